import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GENESIS_HASH, recordHash, verifyAudit, type AuditRecord } from '../../src/audit/index.js';
import { recordLine } from '../../src/audit/canonical.js';
import { action, auditFiles, openLog, readLinesOf, tempState, writeLines, type TempState } from '../../src/audit/testing.js';

let t: TempState;
beforeEach(async () => {
  t = await tempState();
});
afterEach(async () => {
  await t.cleanup();
});

async function writeN(n: number, opts: Parameters<typeof openLog>[1] = {}): Promise<AuditRecord[]> {
  const log = await openLog(t.dir, { checkpointEvery: 0, ...opts });
  const out: AuditRecord[] = [];
  for (let i = 0; i < n; i++) out.push(await log.append(action('s1', `SELECT ${i}`)));
  await log.close();
  return out;
}

describe('audit chain', () => {
  it('links records from the genesis hash and verifies', async () => {
    const records = await writeN(5);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(records[0]?.prev).toBe(GENESIS_HASH);
    for (let i = 1; i < records.length; i++) expect(records[i]?.prev).toBe(records[i - 1]?.hash);
    for (const r of records) expect(recordHash(r)).toBe(r.hash);
    expect(await verifyAudit(t.dir)).toEqual({ ok: true, count: 5 });
  });

  it('recordLazy: records join the chain in order, listeners see them, a closed log reports the failure', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    const seen: AuditRecord[] = [];
    log.onRecord((r) => seen.push(r));
    const failed: Error[] = [];
    log.recordLazy({ type: 'result', session: 's1', rows: 1 }, (e) => failed.push(e));
    const ahead = await log.append(action('s1', 'SELECT 1'));
    log.recordLazy({ type: 'result', session: 's1', rows: 2 }, (e) => failed.push(e));
    await log.close();
    log.recordLazy({ type: 'result', session: 's1', rows: 3 }, (e) => failed.push(e));
    expect(ahead.seq).toBe(2);
    expect(seen.map((r) => [r.seq, r.event.type, (r.event as { rows?: number }).rows])).toEqual([[1, 'result', 1], [2, 'action', undefined], [3, 'result', 2]]);
    expect(failed.map((e) => (e as { code?: string }).code)).toEqual(['AIRLOCK_AUDIT_UNAVAILABLE']);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: true });
  });

  it('writes files and key with owner-only modes', async () => {
    await writeN(1, { checkpointEvery: 10 });
    const [file] = await auditFiles(t.dir);
    expect(file).toMatch(/\d{4}-\d{2}-\d{2}\.000\.jsonl$/);
    expect((await stat(file ?? '')).mode & 0o777).toBe(0o600);
    expect((await stat(join(t.state, 'audit-signing.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(t.state, 'audit-signing.pub'), 'utf8')).toContain('BEGIN PUBLIC KEY');
  });

  it('an edited line is named by file and line', async () => {
    await writeN(5);
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    lines[2] = (lines[2] ?? '').replace('SELECT 2', 'SELECT 9');
    await writeLines(file, lines);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file, line: 3, problem: expect.stringMatching(/hash mismatch/) });
  });

  it('an edit that recomputes the hash breaks the next link', async () => {
    await writeN(5);
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    const r = JSON.parse(lines[2] ?? '') as AuditRecord;
    const forged = { ...r, event: { ...r.event, action: { kind: 'sql', text: 'SELECT 9' } } };
    forged.hash = recordHash(forged);
    lines[2] = recordLine(forged);
    await writeLines(file, lines);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file, line: 4, problem: expect.stringMatching(/prev does not match/) });
  });

  it('a whitespace-only edit is caught', async () => {
    await writeN(3);
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    lines[1] = (lines[1] ?? '').replace('"seq":2', '"seq": 2');
    await writeLines(file, lines);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, line: 2, problem: expect.stringMatching(/canonical/) });
  });

  it('a deleted line is named', async () => {
    await writeN(5);
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    lines.splice(2, 1);
    await writeLines(file, lines);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file, line: 3, problem: expect.stringMatching(/expected seq 3, found 4/) });
  });

  it('deleting the first line is caught (no genesis, nothing vouches)', async () => {
    await writeN(3);
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    await writeLines(file, lines.slice(1));
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file, line: 1, problem: expect.stringMatching(/vouches/) });
  });

  it('reordered lines are named', async () => {
    await writeN(5);
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    const [a = '', b = ''] = [lines[1], lines[2]];
    lines[1] = b;
    lines[2] = a;
    await writeLines(file, lines);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file, line: 2, problem: expect.stringMatching(/expected seq 2, found 3/) });
  });

  it('an inserted line is named', async () => {
    await writeN(4);
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    lines.splice(2, 0, lines[1] ?? '');
    await writeLines(file, lines);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file, line: 3, problem: expect.stringMatching(/expected seq 3, found 2/) });
  });

  it('a line that is not JSON is named', async () => {
    await writeN(3);
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    lines[1] = 'garbage';
    await writeLines(file, lines);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file, line: 2, problem: expect.stringMatching(/not an audit record/) });
  });

  it('resumes the chain after reopening', async () => {
    await writeN(3);
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    const r = await log.append(action('s2', 'SELECT 1'));
    await log.close();
    expect(r.seq).toBe(4);
    expect(await verifyAudit(t.dir)).toEqual({ ok: true, count: 4 });
  });

  it('rotation by size keeps one chain across files', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0, maxFileBytes: 600 });
    for (let i = 0; i < 12; i++) await log.append(action('s1', `SELECT ${i}`));
    await log.close();
    const files = await auditFiles(t.dir);
    expect(files.length).toBeGreaterThan(3);
    expect(files[1]).toMatch(/\.001\.jsonl$/);
    for (const f of files) expect((await stat(f)).size).toBeLessThanOrEqual(600);
    expect(await verifyAudit(t.dir)).toEqual({ ok: true, count: 12 });
    // A line moved into another file breaks the chain there.
    const [first = '', second = ''] = files;
    const a = await readLinesOf(first);
    const b = await readLinesOf(second);
    await writeLines(first, a.slice(0, -1));
    await writeLines(second, [a[a.length - 1] ?? '', ...b]);
    expect(await verifyAudit(t.dir)).toEqual({ ok: true, count: 12 });
    await writeLines(second, b);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file: second, line: 1 });
  });
});

describe('audit checkpoints', () => {
  it('signs the head every N events and on close; verify checks the signatures', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 4 });
    for (let i = 0; i < 6; i++) await log.append(action('s1', `SELECT ${i}`));
    await log.close();
    const [file = ''] = await auditFiles(t.dir);
    const lines = (await readLinesOf(file)).map((l) => JSON.parse(l) as AuditRecord);
    const checkpoints = lines.filter((r) => r.event.type === 'checkpoint');
    expect(checkpoints.map((r) => r.seq)).toEqual([4, 8]);
    expect(checkpoints[0]?.event).toMatchObject({ head: lines[2]?.hash, headSeq: 3, alg: 'ed25519' });
    expect(await verifyAudit(t.dir)).toEqual({ ok: true, count: 8 });
  });

  it('a rewritten chain fails at a checkpoint whose signature no longer matches', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 4 });
    for (let i = 0; i < 5; i++) await log.append(action('s1', `SELECT ${i}`));
    await log.close();
    const [file = ''] = await auditFiles(t.dir);
    const records = (await readLinesOf(file)).map((l) => JSON.parse(l) as AuditRecord);
    // Re-chain everything after an edit at seq 2, as someone with write access but no key would.
    let prev = GENESIS_HASH;
    const rewritten = records.map((r) => {
      const event = r.seq === 2 ? { ...r.event, action: { kind: 'sql', text: 'SELECT nothing' } } : r.event;
      const head = { ...r, prev, event, ...(r.event.type === 'checkpoint' ? { event: { ...r.event, head: prev } } : {}) };
      const next = { ...head, hash: recordHash(head) };
      prev = next.hash;
      return recordLine(next);
    });
    await writeLines(file, rewritten);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file, line: 4, problem: 'checkpoint signature is not valid' });
  });

  it('a checkpoint without the public key cannot pass', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 2 });
    await log.append(action('s1', 'SELECT 1'));
    await log.append(action('s1', 'SELECT 2'));
    await log.close();
    expect(await verifyAudit(t.dir, { keyFile: join(t.state, 'elsewhere.key') })).toMatchObject({ ok: false, line: 2, problem: expect.stringMatching(/no public key/) });
  });
});

describe('canonical form', () => {
  it('the hash input is the sorted-key JSON of { seq, ts, node, prev, event }', async () => {
    const { canonicalJson } = await import('../../src/audit/index.js');
    const { createHash } = await import('node:crypto');
    const r = { seq: 7, ts: '2024-01-01T00:00:00.000Z', node: 'n', prev: GENESIS_HASH, event: { type: 'x', b: [1, { d: 1, c: 'é' }], a: null } };
    expect(canonicalJson(r)).toBe(`{"event":{"a":null,"b":[1,{"c":"é","d":1}],"type":"x"},"node":"n","prev":"${GENESIS_HASH}","seq":7,"ts":"2024-01-01T00:00:00.000Z"}`);
    expect(recordHash(r)).toBe(createHash('sha256').update(canonicalJson(r)).digest('hex'));
  });
});
