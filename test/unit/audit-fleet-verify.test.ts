/**
 * `audit verify --fleet` for one node: its log against the last checkpoint the store holds.
 * The checkpoints come from the log's own onCheckpoint hook, as the daemon publishes them.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFile } from 'node:fs/promises';
import { verifyFleet, verifyNode, type FleetCheckpoint } from '../../src/audit/fleet-verify.js';
import type { SignedCheckpoint } from '../../src/audit/index.js';
import { action, auditFiles, openLog, readLinesOf, tempState, writeLines, type TempState } from '../../src/audit/testing.js';

let t: TempState;
beforeEach(async () => {
  t = await tempState();
});
afterEach(async () => {
  await t.cleanup();
});

/** Writes `n` records with a checkpoint every 4, and returns what the daemon would have published. */
async function logWithCheckpoints(n: number): Promise<SignedCheckpoint[]> {
  const log = await openLog(t.dir, { checkpointEvery: 4 });
  const made: SignedCheckpoint[] = [];
  log.onCheckpoint((c) => made.push(c));
  for (let i = 0; i < n; i++) await log.append(action('s1', `SELECT ${i}`));
  await log.close();
  return made;
}

const stored = (c: SignedCheckpoint, dir: string | null): FleetCheckpoint => ({
  node: 'bastion-1',
  auditDir: dir,
  checkpoint: { seq: c.seq, headSeq: c.headSeq, head: c.head, keyId: c.key, sig: c.sig, file: c.file },
});

describe('audit verify --fleet, one node', () => {
  it('reports each checkpoint once durable, the seal at close included, and passes against the last', async () => {
    const made = await logWithCheckpoints(10);
    // Records 4, 8 and 12 are checkpoints (each signs the record before it); the seal at close is 14.
    expect(made.map((c) => [c.seq, c.headSeq])).toEqual([[4, 3], [8, 7], [12, 11], [14, 13]]);
    const last = made[made.length - 1] as SignedCheckpoint;
    const r = await verifyNode(stored(last, t.dir), undefined);
    expect(r).toMatchObject({ ok: true });
    expect(r.line).toBe(`bastion-1: ok 14 records; chain verified through its last stored checkpoint (seq 14, key ${last.key}) in ${t.dir}`);
  });

  it('fails when the log ends before the stored checkpoint, though the chain that is left is intact', async () => {
    const made = await logWithCheckpoints(10);
    const [file] = await auditFiles(t.dir);
    const lines = await readLinesOf(file ?? '');
    await writeLines(file ?? '', lines.slice(0, -2));
    const r = await verifyNode(stored(made[made.length - 1] as SignedCheckpoint, t.dir), undefined);
    expect(r.ok).toBe(false);
    expect(r.line).toContain('bastion-1: FAIL its log at');
    expect(r.line).toContain('ends at seq 12, before its last checkpoint in the state store (seq 14');
  });

  it('fails when the record at the stored seq is not the stored checkpoint (a rewritten log)', async () => {
    const made = await logWithCheckpoints(10);
    const c = made[1] as SignedCheckpoint;
    const r = await verifyNode(stored({ ...c, sig: (made[0] as SignedCheckpoint).sig }, t.dir), undefined);
    expect(r.line).toContain('the checkpoint at seq 8');
    expect(r.line).toContain('differs from the one in the state store');
    const notCheckpoint = await verifyNode(stored({ ...c, seq: 9 }, t.dir), undefined);
    expect(notCheckpoint.line).toContain('record seq 9');
  });

  it('takes an unfinished last line as the end of a log still being written', async () => {
    const made = await logWithCheckpoints(6);
    const [file] = await auditFiles(t.dir);
    await appendFile(file ?? '', '{"seq":99,"ts":"');
    expect((await verifyNode(stored(made[made.length - 1] as SignedCheckpoint, t.dir), undefined)).ok).toBe(true);
  });

  it('names a node whose log cannot be read, one without a recorded directory, and a --node-dir for no node', async () => {
    const made = await logWithCheckpoints(4);
    const c = made[0] as SignedCheckpoint;
    const out = await verifyFleet(
      [stored(c, `${t.dir}-missing`), { ...stored(c, null), node: 'bastion-2' }],
      new Map([['bastion-9', '/nowhere']]),
    );
    expect(out.exitCode).toBe(1);
    expect(out.text.split('\n')).toEqual([
      `bastion-1: FAIL cannot read its audit log at ${t.dir}-missing (ENOENT)`,
      'bastion-2: FAIL no audit directory recorded for it; pass --node-dir bastion-2=PATH',
      'bastion-9: FAIL --node-dir names a node with no checkpoint in the state store',
      '',
    ]);
    // --node-dir wins over the recorded directory.
    expect((await verifyFleet([stored(c, `${t.dir}-missing`)], new Map([['bastion-1', t.dir]]))).exitCode).toBe(0);
    expect((await verifyFleet([], new Map())).text).toContain('no node has published');
  });
});
