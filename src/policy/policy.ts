/**
 * Rules → Decision. The one place that decides allow / deny / hold for every protocol.
 *
 * Deny beats approve beats allow; with no match an action is allowed. A statement that
 * did not parse is denied (rule "(unparsed)") unless an allow or approve rule that says
 * `unparsed: true` matches it for this identity: fail closed by default. Likewise a
 * WebSocket upgrade is denied (rule "(websocket)") unless an allow or approve rule that
 * says `http: { websocket: true }` matches it, a LOAD DATA LOCAL INFILE statement (the
 * server reads a file from the client's disk) unless one naming `statements: [load_data_local]` does,
 * and an HTTP request with a method-override header (rule "(method_override)") unless one
 * saying `http: { method_override: true }` does — and then it is judged as each method it names.
 */
import type { RuleConfig } from '../config/index.js';
import type { Action, ColumnMaskRule, Decision, DetectorMaskRule, JsonPathMaskRule, Identity, MaskPlan } from '../core/types.js';
import type { RelationRef } from '../../parsers/sql/types.js';
import { ACTION_KINDS, compileRule, type ActionKind, type CompiledRule, type Evidence } from './rule.js';
import { SqlFacts } from './sql-facts.js';
import { explain, explainLoadDataLocal, explainMethodOverride, explainUnparsed, explainWebsocket } from './reason.js';
import { methodOverride, type MethodOverride } from './http-method.js';

export interface PolicyContext {
  identity: Identity;
  /** The connection's name from config. */
  connection: string;
  /** Candidate schema.table names for a relation, e.g. one per search_path schema when unqualified. */
  resolveRelation: (ref: RelationRef) => string[];
}

export interface PolicyOptions {
  /** Hold timeout for approve rules without `timeout`. */
  defaultApprovalTimeoutMs?: number;
}

export const UNPARSED_RULE = '(unparsed)';
export const WEBSOCKET_RULE = '(websocket)';
export const LOAD_DATA_LOCAL_RULE = '(load_data_local)';
export const METHOD_OVERRIDE_RULE = '(method_override)';
const DEFAULT_APPROVAL_TIMEOUT_MS = 600_000;

/** The rules that can apply to one identity on one connection, by action kind, and its mask plan. */
interface Applicable {
  byKind: Map<ActionKind, CompiledRule[]>;
  mask: MaskPlan;
}

interface Matched {
  rule: CompiledRule;
  evidence: Evidence;
}

export class Policy {
  private readonly decisionRules: CompiledRule[];
  private readonly maskRules: CompiledRule[];
  private readonly defaultTimeoutMs: number;
  /** Identity objects live as long as their session, so a WeakMap keeps the cache bounded by live sessions. */
  private readonly cache = new WeakMap<Identity, Map<string, Applicable>>();

  constructor(rules: RuleConfig[], options: PolicyOptions = {}) {
    const compiled = rules.map((r, i) => compileRule(r, i));
    this.decisionRules = compiled.filter((r) => r.config.effect !== 'mask');
    this.maskRules = compiled.filter((r) => r.config.effect === 'mask');
    this.defaultTimeoutMs = options.defaultApprovalTimeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS;
  }

  decide(action: Action, ctx: PolicyContext): Decision {
    const override = action.kind === 'http' ? methodOverride(action.headers, action.query) : null;
    if (action.kind !== 'http' || override === null) return this.decideOne(action, ctx).decision;
    return this.decideOverridden(action, override, ctx);
  }

  /**
   * A request that names another method in a header is judged as every method it may mean
   * (deny beats approve beats allow across them), and passes only where an allow or approve
   * rule with `http: { method_override: true }` matches it.
   */
  private decideOverridden(action: Extract<Action, { kind: 'http' }>, override: MethodOverride, ctx: PolicyContext): Decision {
    const own = this.decideOne(action, ctx);
    const others = override.methods.filter((m) => m !== action.method.toUpperCase()).map((method) => this.decideOne({ ...action, method }, ctx).decision);
    const all = [own.decision, ...others];
    const rules = [...new Set(all.flatMap((d) => d.rules))];
    const mask = own.decision.mask;
    const denied = all.find((d) => d.effect === 'deny');
    if (denied !== undefined) return { ...denied, rules };
    const admitted = own.matched.some((m) => m.rule.config.effect !== 'deny' && m.rule.config.when.http?.method_override === true);
    if (!admitted) {
      return { effect: 'deny', rule: METHOD_OVERRIDE_RULE, reason: explainMethodOverride(ctx.identity, ctx.connection, override.header), rules: [...rules, METHOD_OVERRIDE_RULE], mask };
    }
    const held = all.find((d) => d.effect === 'hold');
    return held === undefined ? { effect: 'allow', rules, mask } : { ...held, rules };
  }

  private decideOne(action: Action, ctx: PolicyContext): { decision: Decision; matched: Matched[] } {
    const applicable = this.applicable(ctx.identity, ctx.connection);
    const mask = applicable.mask;
    const candidates = applicable.byKind.get(action.kind) ?? [];
    const sql = action.kind === 'sql' ? new SqlFacts(action.statement, ctx.resolveRelation) : null;

    const matched: Matched[] = [];
    for (const rule of candidates) {
      const evidence = rule.matchAction(action, sql);
      if (evidence !== null) matched.push({ rule, evidence });
    }
    const rules = matched.map((m) => m.rule.config.name);
    // A rule that matched on its own terms explains a refusal better than one matched only
    // because the statement's effects are unknown.
    const first = (effect: string): Matched | undefined =>
      matched.find((m) => m.rule.config.effect === effect && m.evidence.unknownEffects !== true) ?? matched.find((m) => m.rule.config.effect === effect);
    const deny = first('deny');
    const approve = first('approve');

    if (deny !== undefined) {
      return { matched, decision: { effect: 'deny', rule: deny.rule.config.name, reason: this.explain(deny, action, ctx), rules, mask } };
    }
    if (action.kind === 'sql' && action.statement.unparsed) {
      const admitted = matched.some((m) => m.rule.config.effect !== 'deny' && m.rule.config.when.unparsed === true);
      if (!admitted) {
        return { matched, decision: { effect: 'deny', rule: UNPARSED_RULE, reason: explainUnparsed(ctx.identity, ctx.connection), rules: [...rules, UNPARSED_RULE], mask } };
      }
    }
    // A WebSocket's frames are only recorded, not judged: it opens only where a rule says so.
    if (action.kind === 'http' && action.websocket === true) {
      const admitted = matched.some((m) => m.rule.config.effect !== 'deny' && m.rule.config.when.http?.websocket === true);
      if (!admitted) {
        return { matched, decision: { effect: 'deny', rule: WEBSOCKET_RULE, reason: explainWebsocket(ctx.identity, ctx.connection), rules: [...rules, WEBSOCKET_RULE], mask } };
      }
    }
    // LOAD DATA LOCAL lets the server read a file from the client's disk: only where a rule names it.
    if (action.kind === 'sql' && action.statement.kinds.includes('load_data_local')) {
      const admitted = matched.some((m) => m.rule.config.effect !== 'deny' && m.rule.config.when.statements?.includes('load_data_local') === true);
      if (!admitted) {
        return { matched, decision: { effect: 'deny', rule: LOAD_DATA_LOCAL_RULE, reason: explainLoadDataLocal(ctx.identity, ctx.connection), rules: [...rules, LOAD_DATA_LOCAL_RULE], mask } };
      }
    }
    if (approve !== undefined) {
      const r = approve.rule.config;
      const decision: Decision = {
        effect: 'hold',
        rule: r.name,
        reason: this.explain(approve, action, ctx),
        approvers: r.approvers ?? [],
        timeoutMs: r.timeout ?? this.defaultTimeoutMs,
        ...(r.grant_for === undefined || action.kind !== 'connect' ? {} : { grantForMs: r.grant_for }),
        perExecution: r.per_execution,
        rules,
        mask,
      };
      return { matched, decision };
    }
    return { matched, decision: { effect: 'allow', rules, mask } };
  }

  /** Every rule (decision and mask) that can apply to this identity on this connection, in config order. */
  rulesFor(identity: Identity, connection: string): RuleConfig[] {
    const applies = (r: CompiledRule): boolean => r.matchesConnection(connection) && r.matchesIdentity(identity);
    return [...this.decisionRules, ...this.maskRules].filter(applies).sort((a, b) => a.index - b.index).map((r) => r.config);
  }

  /** Mask rules that apply to this identity on this connection; they accumulate, in config order. */
  maskPlan(ctx: { identity: Identity; connection: string }): MaskPlan {
    return this.applicable(ctx.identity, ctx.connection).mask;
  }

  private explain(m: Matched, action: Action, ctx: PolicyContext): string {
    return explain(m.rule, m.evidence, action, ctx.identity, ctx.connection);
  }

  private applicable(identity: Identity, connection: string): Applicable {
    let perConnection = this.cache.get(identity);
    if (perConnection === undefined) {
      perConnection = new Map();
      this.cache.set(identity, perConnection);
    }
    // Groups are part of the key in case a caller reuses an Identity object with new groups.
    const key = `${connection}\u0000${identity.kind}\u0000${identity.subject}\u0000${identity.groups.join('\u0000')}`;
    let found = perConnection.get(key);
    if (found === undefined) {
      found = this.computeApplicable(identity, connection);
      if (perConnection.size > 64) perConnection.clear();
      perConnection.set(key, found);
    }
    return found;
  }

  private computeApplicable(identity: Identity, connection: string): Applicable {
    const applies = (r: CompiledRule): boolean => r.matchesConnection(connection) && r.matchesIdentity(identity);
    const rules = this.decisionRules.filter(applies);
    const byKind = new Map<ActionKind, CompiledRule[]>();
    for (const kind of ACTION_KINDS) byKind.set(kind, rules.filter((r) => r.appliesTo.has(kind)));
    return { byKind, mask: buildMaskPlan(this.maskRules.filter(applies)) };
  }
}

function buildMaskPlan(rules: CompiledRule[]): MaskPlan {
  const columns: ColumnMaskRule[] = [];
  const detectors: DetectorMaskRule[] = [];
  const jsonPaths: JsonPathMaskRule[] = [];
  let denyPredicates = false;
  for (const { config: r } of rules) {
    const method = r.method ?? 'redact';
    const extra = { ...(r.keep === undefined ? {} : { keep: r.keep }), ...(r.fixed === undefined ? {} : { fixed: r.fixed }) };
    if (r.columns !== undefined) columns.push({ rule: r.name, columns: r.columns, method, ...extra });
    if (r.detect !== undefined) detectors.push({ rule: r.name, detect: r.detect, method, ...extra });
    if (r.json_paths !== undefined) jsonPaths.push({ rule: r.name, paths: r.json_paths, method, ...extra });
    if (r.deny_predicates) denyPredicates = true;
  }
  return Object.freeze({ columns, detectors, jsonPaths, denyPredicates });
}
