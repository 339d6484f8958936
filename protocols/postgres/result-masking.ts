/**
 * Masking of what a Postgres session returns, for identities under a mask rule. It follows
 * the request/response pairing of both protocols to know which statement each
 * RowDescription and DataRow belong to, judges every output column once (provenance from
 * RowDescription, lineage from the analysis, fail closed), and rewrites only the cells
 * that need it. Errors, notices and notifications are scrubbed of masked values; those of a
 * statement that reads masked columns keep only their SQLSTATE (src/masking/errors.ts).
 */
import type { Session } from '../../src/core/session-types.js';
import { AirlockError } from '../../src/util/errors.js';
import type { ColumnMaskRule } from '../../src/core/types.js';
import type { OutputLineage, RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';
import { ColumnMasker, DetectorRules, PG_SAFE_TEMPLATES, safeMessage, judgeOutput, maskText, maskValue, maskValueByDetectors, readsMaskedData, strongest, keyFromSecret, withheldMessage } from '../../src/masking/index.js';
import type { Frame } from './codec/framing.js';
import { MessageCode } from './codec/codes.js';
import {
  decodeDataRow,
  decodeErrorResponse,
  decodeNoticeResponse,
  decodeNotificationResponse,
  decodeRowDescription,
  encodeDataRow,
  encodeErrorResponse,
  encodeNoticeResponse,
  encodeNotificationResponse,
  encodeCopyData,
  type ErrorFields,
  type FieldDescription,
} from './codec/backend.js';
import type { PgCatalog, RelationInfo } from './catalog.js';

interface ColumnPlan {
  name: string;
  rule: ColumnMaskRule | null;
  /** The masked encoding when it does not depend on the value (redact, fixed, null). */
  constant?: Buffer | null;
  oid: number;
  format: 'text' | 'binary';
}

/** null: no column needs anything (rows pass as they arrived). */
type RowPlan = ColumnPlan[] | null;

interface Prepared {
  statement: StatementAnalysis | null;
  fields: FieldDescription[] | null;
}

interface Portal {
  prepared: Prepared;
  resultFormats: number[];
  plan: RowPlan | undefined;
}

type Expect =
  | { kind: 'query'; statements: StatementAnalysis[]; index: number; plan: RowPlan | undefined }
  | { kind: 'parse' | 'bind'; statement: StatementAnalysis | null }
  | { kind: 'close' | 'sync' }
  | { kind: 'describe'; prepared: Prepared | null; portal: Portal | null }
  | { kind: 'execute'; portal: Portal | null };

const MAX_SEEN_VALUES = 5_000;

/** COPY text format escapes (PostgreSQL docs, COPY "Text Format"). */
function copyUnescape(f: string): string {
  return f.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))/g, (_m, oct: string | undefined, hex: string | undefined, ch: string | undefined) => {
    if (oct !== undefined) return String.fromCharCode(parseInt(oct, 8));
    if (hex !== undefined) return String.fromCharCode(parseInt(hex, 16));
    switch (ch) {
      case 'b': return '\b';
      case 'f': return '\f';
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case 'v': return '\v';
      default: return ch ?? '';
    }
  });
}

function copyEscape(v: string): string {
  return v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

export class ResultMasker {
  private readonly masker: ColumnMasker;
  private readonly detectors: DetectorRules;
  private readonly key: Buffer;
  private readonly prepared = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();
  private readonly expected: Expect[] = [];
  /** Raw values masked in this session, scrubbed from error and notice text. */
  private readonly seen = new Set<string>();
  /** COPY statements whose output is `table.*`: the table's columns in order, resolved before forwarding. */
  private readonly copyTables = new Map<StatementAnalysis, string[] | null>();
  /** Per-column rules of the COPY now streaming (text format), or null when none. */
  private copyPlan: Array<ColumnMaskRule | null> | null = null;

  constructor(
    private readonly session: Session,
    private readonly catalog: PgCatalog,
    hashKey: string,
  ) {
    this.masker = new ColumnMasker(session.maskPlan);
    this.detectors = new DetectorRules(session.maskPlan.detectors);
    this.key = keyFromSecret(hashKey);
  }

  static needed(session: Session): boolean {
    return session.maskPlan.columns.length > 0 || session.maskPlan.detectors.length > 0;
  }

  /** Resolves what a statement's output will be when that needs the catalog (COPY table TO). */
  async prepare(statements: StatementAnalysis[]): Promise<void> {
    if (this.masker.empty) return;
    // Which relations the statements name are views: a computed column over a view carries what
    // the view's column reads (RowDescription names no table for it). Not known: fail closed.
    const refs = statements.flatMap((st) => [...st.reads, ...(st.outputs ?? []).flatMap((o) => o.sources.map((src) => src.relation))]);
    const names = refs.flatMap((ref) => this.session.resolveRelation(ref)).filter((n) => !n.startsWith('pg_temp.'));
    try {
      await this.catalog.loadNames(names, this.session.lease, (sql) => this.session.analyzeSql(sql, 'postgres'));
    } catch (e) {
      this.session.logger.warn({ err: e }, 'view look-up for masking failed');
    }
    for (const st of statements) {
      const out = st.outputs;
      if (!st.kinds.includes('copy') || out === null || out.length !== 1 || out[0]?.expansion !== true) continue;
      const ref = out[0]?.sources[0]?.relation;
      let resolved: { table: string; columns: string[] } | null = null;
      if (ref !== undefined) {
        try {
          resolved = await this.catalog.tableColumns(this.session.resolveRelation(ref).filter((n) => !n.startsWith('\u0000')), this.session.lease);
        } catch {
          resolved = null;
        }
      }
      this.copyTables.set(st, resolved === null ? null : resolved.columns.map((c) => `${resolved.table}.${c}`));
    }
  }

  // ---- what the client sent (in the order it was forwarded) --------------

  onQuery(statements: StatementAnalysis[]): void {
    this.expected.push({ kind: 'query', statements, index: 0, plan: undefined });
  }

  onParse(name: string, statement: StatementAnalysis | null): void {
    this.prepared.set(name, { statement, fields: null });
    this.expected.push({ kind: 'parse', statement });
  }

  onClientFrame(frame: Frame, decode: () => { type: string; [k: string]: unknown }): void {
    switch (frame.type) {
      case MessageCode.Bind: {
        const m = decode() as unknown as { portal: string; statement: string; resultFormats: number[] };
        const prepared = this.prepared.get(m.statement) ?? { statement: null, fields: null };
        this.portals.set(m.portal, { prepared, resultFormats: m.resultFormats, plan: undefined });
        this.expected.push({ kind: 'bind', statement: prepared.statement });
        break;
      }
      case MessageCode.Describe: {
        const m = decode() as unknown as { kind: 'S' | 'P'; name: string };
        if (m.kind === 'S') this.expected.push({ kind: 'describe', prepared: this.prepared.get(m.name) ?? null, portal: null });
        else {
          const portal = this.portals.get(m.name) ?? null;
          this.expected.push({ kind: 'describe', prepared: portal?.prepared ?? null, portal });
        }
        break;
      }
      case MessageCode.Execute: {
        const m = decode() as unknown as { portal: string };
        this.expected.push({ kind: 'execute', portal: this.portals.get(m.portal) ?? null });
        break;
      }
      case MessageCode.Close:
        this.expected.push({ kind: 'close' });
        break;
      case MessageCode.Sync:
        this.expected.push({ kind: 'sync' });
        break;
      default:
        break;
    }
  }

  // ---- what the upstream answers ----------------------------------------

  /** Whether this frame needs async work (catalog look-up) before it can be handled. */
  needsCatalog(frame: Frame): number[] {
    if (frame.type !== MessageCode.RowDescription || this.masker.empty) return [];
    return decodeRowDescription(frame.payload).fields.map((f) => f.tableOid).filter((o) => o !== 0 && this.catalog.get(o) === undefined);
  }

  /** Returns the bytes to send instead of the frame, or null to pass it as it arrived. */
  onUpstreamFrame(frame: Frame): Buffer | null {
    switch (frame.type) {
      case MessageCode.ParseComplete:
        this.pop('parse');
        return null;
      case MessageCode.BindComplete:
        this.pop('bind');
        return null;
      case MessageCode.CloseComplete:
        this.pop('close');
        return null;
      case MessageCode.RowDescription:
        this.rowDescription(frame);
        return null;
      case MessageCode.NoData:
        if (this.expected[0]?.kind === 'describe') this.expected.shift();
        return null;
      case MessageCode.DataRow:
        return this.dataRow(frame);
      case MessageCode.CopyOutResponse:
        this.copyPlan = this.planCopy();
        return null;
      case MessageCode.CopyData:
        return this.copyPlan === null ? null : this.copyRow(frame.payload, this.copyPlan);
      case MessageCode.CopyDone:
        this.copyPlan = null;
        return null;
      case MessageCode.CommandComplete:
      case MessageCode.EmptyQueryResponse:
      case MessageCode.PortalSuspended: {
        const head = this.expected[0];
        if (head?.kind === 'query') {
          head.index++;
          head.plan = undefined;
        } else if (head?.kind === 'execute') this.expected.shift();
        return null;
      }
      case MessageCode.ErrorResponse: {
        const st = this.runningStatement();
        // The server skips to the next Sync (extended) or ends the Query.
        const head = this.expected[0];
        if (head?.kind !== 'query') while (this.expected.length > 0 && this.expected[0]?.kind !== 'sync') this.expected.shift();
        return this.scrubFields(decodeErrorResponse(frame.payload).fields, encodeErrorResponse, st);
      }
      case MessageCode.NoticeResponse:
        return this.scrubFields(decodeNoticeResponse(frame.payload).fields, encodeNoticeResponse, this.runningStatement());
      case MessageCode.NotificationResponse: {
        const n = decodeNotificationResponse(frame.payload);
        const payload = this.scrubText(n.payload);
        return payload === n.payload ? null : encodeNotificationResponse(n.pid, n.channel, payload);
      }
      case MessageCode.ReadyForQuery: {
        const head = this.expected[0];
        if (head?.kind === 'query' || head?.kind === 'sync') this.expected.shift();
        return null;
      }
      default:
        return null;
    }
  }

  private lastMasked: string[] = [];

  /** Output columns masked in the result that just completed (for the audit log); resets. */
  maskedColumns(): string[] {
    const m = this.lastMasked;
    this.lastMasked = [];
    return m;
  }

  /**
   * The statement the server is working on: null when it is not known (judged as reading
   * masked data), undefined when no statement is in progress (an asynchronous notice, a FATAL).
   */
  private runningStatement(): StatementAnalysis | null | undefined {
    const head = this.expected[0];
    switch (head?.kind) {
      case 'query': return head.statements[head.index] ?? null;
      case 'execute': return head.portal?.prepared.statement ?? null;
      case 'parse': case 'bind': return head.statement;
      case 'describe': return head.prepared?.statement ?? null;
      default: return undefined;
    }
  }

  /** Judged when an error arrives (rare), against what the catalog knows then; not cached. */
  private statementReadsMasked(st: StatementAnalysis | null): boolean {
    if (this.masker.empty) return false;
    return readsMaskedData(st, this.masker, (ref) => this.session.resolveRelation(ref), (t) => this.catalog.columnsOf(t))
      || (st !== null && st.reads.some((ref) => this.throughViews(ref, '*') !== null));
  }

  private pop(kind: 'parse' | 'bind' | 'close'): void {
    if (this.expected[0]?.kind === kind) this.expected.shift();
  }

  private rowDescription(frame: Frame): void {
    const fields = decodeRowDescription(frame.payload).fields;
    const head = this.expected[0];
    if (head?.kind === 'query') {
      head.plan = this.plan(fields, head.statements[head.index] ?? null, fields.map((f) => f.format));
    } else if (head?.kind === 'describe') {
      this.expected.shift();
      if (head.prepared !== null) head.prepared.fields = fields;
      if (head.portal !== null) head.portal.plan = this.plan(fields, head.portal.prepared.statement, fields.map((f) => f.format));
    }
  }

  private dataRow(frame: Frame): Buffer | null {
    const head = this.expected[0];
    let plan: RowPlan | undefined;
    if (head?.kind === 'query') plan = head.plan;
    else if (head?.kind === 'execute') {
      const portal = head.portal;
      if (portal !== null && portal.plan === undefined && portal.prepared.fields !== null) {
        const n = portal.prepared.fields.length;
        const formats = portal.prepared.fields.map((_, i) => portal.resultFormats.length === 1 ? (portal.resultFormats[0] ?? 0) : (portal.resultFormats[i] ?? 0));
        portal.plan = n === 0 ? null : this.plan(portal.prepared.fields, portal.prepared.statement, formats);
      }
      plan = portal?.plan;
    }
    if (plan === null) return null;
    if (plan !== undefined && this.lastMasked.length === 0) this.lastMasked = plan.filter((c) => c.rule !== null).map((c) => c.name);
    if (plan !== undefined && this.detectors.empty) return this.rewriteRow(frame.payload, plan);
    const row = decodeDataRow(frame.payload);
    // No description seen for these rows: nothing is known of the columns, so none passes.
    if (plan === undefined) return encodeDataRow(row.cells.map(() => null));
    let changed = false;
    const cells = row.cells.map((cell, i) => {
      const c = plan[i];
      if (c === undefined || cell === null) return cell;
      const type = { oid: c.oid, format: c.format } as const;
      if (c.rule !== null) {
        changed = true;
        if (type.format === 'text' && cell.length >= 4 && this.seen.size < MAX_SEEN_VALUES) this.seen.add(cell.toString('utf8'));
        return maskValue(cell, type, c.rule.method, { ...(c.rule.keep === undefined ? {} : { keep: c.rule.keep }), ...(c.rule.fixed === undefined ? {} : { fixed: c.rule.fixed }), key: this.key });
      }
      if (!this.detectors.empty) {
        const r = maskValueByDetectors(cell, type, this.detectors, this.key);
        if (r.findings > 0) {
          changed = true;
          return r.value;
        }
      }
      return cell;
    });
    return changed ? encodeDataRow(cells) : null;
  }

  /** Rules by column position for the COPY … TO STDOUT whose output starts now. */
  private planCopy(): Array<ColumnMaskRule | null> | null {
    if (this.masker.empty && this.detectors.empty) return null;
    const head = this.expected[0];
    const st = head?.kind === 'query' ? (head.statements[head.index] ?? null) : head?.kind === 'execute' ? (head.portal?.prepared.statement ?? null) : null;
    const strongestAll = this.masker.strongestOverall();
    if (st === null || st.outputs === null) return [strongestAll];
    let plan: Array<ColumnMaskRule | null>;
    if (this.copyTables.has(st)) {
      const cols = this.copyTables.get(st) ?? null;
      // The table could not be resolved: every column is withheld.
      plan = cols === null ? [strongestAll] : cols.map((c) => this.masker.methodFor(c));
    } else {
      plan = st.outputs.map((o) => this.judge(o, st.reads));
    }
    this.lastMasked = plan.some((r) => r !== null) ? ['(copy)'] : [];
    return plan.some((r) => r !== null) || !this.detectors.empty ? plan : null;
  }

  /**
   * One COPY text-format row: tab-separated fields, backslash escapes, \N for NULL. A masked
   * field is unescaped, masked and escaped again; with an unknown layout (a one-entry plan
   * for a wider row) every field takes that entry's rule.
   */
  private copyRow(payload: Buffer, plan: Array<ColumnMaskRule | null>): Buffer {
    const text = payload.toString('utf8');
    const eol = text.endsWith('\n') ? '\n' : '';
    const fields = (eol ? text.slice(0, -1) : text).split('\t');
    const uniform = plan.length === 1 && fields.length > 1;
    const out = fields.map((f, i) => {
      // A field beyond the known layout is withheld (fail closed).
      const rule = uniform ? (plan[0] ?? null) : i < plan.length ? (plan[i] ?? null) : this.masker.strongestOverall();
      if (f === '\\N') return f;
      if (rule === null) return this.detectors.empty ? f : copyEscape(maskText(copyUnescape(f), this.detectors, this.key).text);
      const value = copyUnescape(f);
      if (value.length >= 4 && this.seen.size < MAX_SEEN_VALUES) this.seen.add(value);
      if (rule.method === 'null') return '\\N';
      const masked = maskValue(Buffer.from(value, 'utf8'), { format: 'text', oid: 25 }, rule.method, { ...(rule.keep === undefined ? {} : { keep: rule.keep }), ...(rule.fixed === undefined ? {} : { fixed: rule.fixed }), key: this.key });
      return masked === null ? '\\N' : copyEscape(masked.toString('utf8'));
    });
    return encodeCopyData(Buffer.from(out.join('\t') + eol, 'utf8'));
  }

  /**
   * Column rules only (no detectors): walks the row's cell lengths and copies the bytes of
   * unmasked cells as they are; masked cells of a method whose output does not depend on
   * the value (redact, fixed, null) reuse one precomputed encoding.
   */
  private rewriteRow(payload: Buffer, plan: ColumnPlan[]): Buffer {
    const p = payload;
    const total = p.length;
    if (total < 2) throw new AirlockError('AIRLOCK_PROTOCOL', 'malformed DataRow from upstream', { fatal: true });
    const n = (p[0] as number) << 8 | (p[1] as number);
    // Pass 1: cell offsets and replacements. `starts[i]` is where cell i's length field is.
    const starts = this.rowStarts.length >= n + 1 ? this.rowStarts : (this.rowStarts = new Int32Array(n + 1));
    const replaced = this.rowReplaced;
    replaced.length = 0;
    const seenFull = this.seen.size >= MAX_SEEN_VALUES;
    let size = 2;
    let off = 2;
    for (let i = 0; i < n; i++) {
      if (off + 4 > total) throw new AirlockError('AIRLOCK_PROTOCOL', 'malformed DataRow from upstream', { fatal: true });
      starts[i] = off;
      // Int32 big-endian, read by hand: this loop runs for every cell of every masked row.
      const len = ((p[off] as number) << 24) | ((p[off + 1] as number) << 16) | ((p[off + 2] as number) << 8) | (p[off + 3] as number);
      const body = len < 0 ? 0 : len;
      const c = plan[i];
      if (c !== undefined && c.rule !== null && len >= 0) {
        const out = c.constant !== undefined && seenFull ? c.constant : this.maskCell(c, p.subarray(off + 4, off + 4 + body));
        replaced[i] = out;
        size += 4 + (out === null ? 0 : out.length);
      } else size += 4 + body;
      off += 4 + body;
    }
    if (off > total) throw new AirlockError('AIRLOCK_PROTOCOL', 'malformed DataRow from upstream', { fatal: true });
    starts[n] = off;
    // Pass 2: unmasked cells are copied in runs (one copy per run, not per cell).
    const outBuf = this.allocate(1 + 4 + size);
    outBuf[0] = MessageCode.DataRow;
    outBuf.writeInt32BE(4 + size, 1);
    let w = 5;
    let runStart = 0; // the column count is part of the first run
    for (let i = 0; i <= n; i++) {
      const r = i < n ? replaced[i] : undefined;
      if (i < n && r === undefined) continue;
      const runEnd = starts[i] as number;
      if (runEnd > runStart) w += p.copy(outBuf, w, runStart, runEnd);
      if (i === n) break;
      if (r === null) {
        outBuf.writeInt32BE(-1, w);
        w += 4;
      } else if (r !== undefined) {
        outBuf.writeInt32BE(r.length, w);
        w += 4 + r.copy(outBuf, w + 4);
      }
      runStart = starts[i + 1] as number;
    }
    return outBuf;
  }

  /**
   * Where rewritten rows are built. The relay hands out consecutive slices of one slab, so
   * rows rewritten one after another are adjacent in memory and leave in one write.
   */
  allocate: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size);

  /** Scratch space for rewriteRow, reused row after row. */
  private rowStarts = new Int32Array(16);
  private readonly rowReplaced: Array<Buffer | null | undefined> = [];

  private maskCell(c: ColumnPlan, cell: Buffer): Buffer | null {
    const rule = c.rule as ColumnMaskRule;
    if (c.format === 'text' && cell.length >= 4 && this.seen.size < MAX_SEEN_VALUES) this.seen.add(cell.toString('utf8'));
    if (c.constant !== undefined) return c.constant;
    const type = { oid: c.oid, format: c.format } as const;
    const opts = { ...(rule.keep === undefined ? {} : { keep: rule.keep }), ...(rule.fixed === undefined ? {} : { fixed: rule.fixed }), key: this.key };
    const out = maskValue(cell, type, rule.method, opts);
    // These methods never look at the value: compute once per column.
    if (rule.method === 'redact' || rule.method === 'null' || rule.method === 'fixed') c.constant = out;
    return out;
  }

  /** An output column by its lineage: its sources' rules, and what the views among them read. */
  private judge(lineage: OutputLineage, reads: readonly RelationRef[]): ColumnMaskRule | null {
    const found = [judgeOutput(lineage, this.masker, (ref) => this.session.resolveRelation(ref), (t) => this.catalog.columnsOf(t), reads)];
    for (const src of lineage.sources) found.push(this.throughViews(src.relation, lineage.unknown ? '*' : src.column));
    if (lineage.unknown) for (const ref of reads) found.push(this.throughViews(ref, '*'));
    return strongest(found.filter((r): r is ColumnMaskRule => r !== null));
  }

  /**
   * What a view's column (attnum null: any of its columns) carries from what the view reads.
   * The server's own views (pg_catalog, information_schema) are judged by their column names
   * only: the built-in catalog rule names the ones that carry values, and `pid` of
   * pg_stat_activity or `column_name` of information_schema.columns stay readable.
   */
  private viewRule(info: RelationInfo, attnum: number | null): ColumnMaskRule | null {
    if (info.schema === 'pg_catalog' || info.schema === 'information_schema') return null;
    const sources = (attnum === null ? undefined : info.columnSources?.get(attnum)) ?? info.sources ?? [];
    return strongest(sources.map((src) => (src === '*.*.*' ? this.masker.strongestOverall() : src.endsWith('.*') ? this.masker.strongestForTable(src.slice(0, -2)) : this.masker.methodFor(src)))
      .filter((r): r is ColumnMaskRule => r !== null));
  }

  /**
   * When `ref` names a view: what reading its `column` ('*': every column) carries. A name never
   * looked up (the look-up failed) counts as a view that reads anything (fail closed); prepare()
   * looks names up again once their entry is older than the catalog's TTL.
   */
  private throughViews(ref: RelationRef, column: string): ColumnMaskRule | null {
    const found: Array<ColumnMaskRule | null> = [];
    for (const name of this.session.resolveRelation(ref)) {
      if (name.startsWith('pg_temp.')) continue;
      const infos = this.catalog.byName(name, true);
      if (infos === undefined) { found.push(this.masker.strongestOverall()); continue; }
      for (const info of infos) {
        if (info.kind !== 'v' && info.kind !== 'm') continue;
        const attnum = column === '*' ? undefined : [...info.columns].find(([, c]) => c === column)?.[0];
        found.push(this.viewRule(info, attnum ?? null));
      }
    }
    return strongest(found.filter((r): r is ColumnMaskRule => r !== null));
  }

  /** One plan per result shape; null when nothing in it needs masking or scanning. */
  private plan(fields: FieldDescription[], statement: StatementAnalysis | null, formats: number[]): RowPlan {
    const outputs = statement?.outputs ?? null;
    const lineageUsable = outputs !== null && outputs.length === fields.length;
    let any = !this.detectors.empty;
    const plan = fields.map((f, i): ColumnPlan => {
      let rule: ColumnMaskRule | null = null;
      if (!this.masker.empty) {
        if (f.tableOid !== 0) {
          const info = this.catalog.get(f.tableOid);
          const column = info?.columns.get(f.columnAttr);
          if (info === undefined || column === undefined) rule = this.masker.strongestOverall();
          else {
            const own = this.masker.methodFor(`${info.schema}.${info.name}.${column}`);
            rule = strongest([own, this.viewRule(info, f.columnAttr)].filter((r): r is ColumnMaskRule => r !== null));
          }
        } else {
          const lineage = lineageUsable ? outputs[i] : undefined;
          rule = this.judge(lineage ?? { name: null, sources: [], unknown: true }, statement?.reads ?? []);
        }
      }
      if (rule !== null) any = true;
      return { name: f.name, rule, oid: f.typeOid, format: formats[i] === 1 ? 'binary' : 'text' };
    });
    return any ? plan : null;
  }

  // ---- error, notice and notification text -------------------------------

  /**
   * The error of a statement that reads masked columns: its SQLSTATE and the class's generic
   * text, or a safe template with its variable parts redacted; never detail, hint, context or
   * internal query.
   */
  private withhold(fields: ErrorFields): ErrorFields {
    const out: ErrorFields = { ...fields };
    out.message = safeMessage(PG_SAFE_TEMPLATES, fields.code, fields.message) ?? withheldMessage(fields.code);
    for (const k of ['detail', 'hint', 'where', 'internalQuery', 'internalPosition'] as const) delete out[k];
    return out;
  }

  private scrubText(text: string): string {
    let out = text;
    for (const v of this.seen) if (out.includes(v)) out = out.split(v).join('[redacted]');
    if (!this.detectors.empty) out = maskText(out, this.detectors, this.key).text;
    return out;
  }

  private scrubFields(fields: ErrorFields, encode: (f: ErrorFields) => Buffer, st: StatementAnalysis | null | undefined): Buffer | null {
    if (this.masker.empty && this.detectors.empty) return null;
    if (st !== undefined && this.statementReadsMasked(st)) return encode(this.withhold(fields));
    let changed = false;
    const out: ErrorFields = { ...fields };
    for (const k of ['message', 'detail', 'hint', 'where', 'internalQuery'] as const) {
      const v = fields[k];
      if (v === undefined) continue;
      // Server messages quote the offending value ("invalid input syntax for type integer: \"123-45-6789\"");
      // under a column mask rule every quoted value is withheld.
      let s = this.masker.empty ? v : v.replace(/"(?:[^"\\]|\\.)*"/g, '"[redacted]"');
      if (k === 'detail' && !this.masker.empty) s = '[redacted by airlock]';
      s = this.scrubText(s);
      if (s !== v) {
        out[k] = s;
        changed = true;
      }
    }
    return changed ? encode(out) : null;
  }
}
