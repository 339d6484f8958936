/**
 * `airlock audit verify --fleet`: every node of a fleet keeps its own chain, and publishes each
 * signed checkpoint to the shared state store. For every node the store knows, its log must
 * verify (hashes, links, signatures) and must still contain the chain up to the last checkpoint
 * the store holds — the same record, head and signature. A log cut before that checkpoint, or
 * rewritten since, cannot match it: records a node lost or someone removed show here, which the
 * chain alone cannot show for records cut from its end.
 *
 * With pinned keys (`--public-key`) every node's checkpoints must be signed by one of them (one
 * shared audit.signing_key, or the keys of a rotation), not by whatever key sits beside its log.
 */
import { stat } from 'node:fs/promises';
import { verifyAudit } from './verify.js';
import type { AuditRecord } from './types.js';
import { fieldsOf } from './record.js';
import type { CheckpointKeys } from './verify-keys.js';

export interface FleetCheckpoint {
  node: string;
  /** The node's audit directory as it recorded it; null when unknown. */
  auditDir: string | null;
  /** The last checkpoint the store holds for the node. */
  checkpoint: { seq: number; headSeq: number; head: string; keyId: string; sig: string; file: string };
}

export interface FleetNodeResult {
  node: string;
  ok: boolean;
  line: string;
}

/** One node: its log against its last stored checkpoint. `dir` overrides the recorded directory. */
export async function verifyNode(n: FleetCheckpoint, dir: string | undefined, keys?: CheckpointKeys): Promise<FleetNodeResult> {
  const c = n.checkpoint;
  const fail = (why: string): FleetNodeResult => ({ node: n.node, ok: false, line: `${n.node}: FAIL ${why}` });
  const where = dir ?? n.auditDir;
  if (where === null) return fail(`no audit directory recorded for it; pass --node-dir ${n.node}=PATH`);
  try {
    if (!(await stat(where)).isDirectory()) return fail(`cannot read its audit log: ${where} is not a directory`);
  } catch (e) {
    return fail(`cannot read its audit log at ${where} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let found: AuditRecord | null = null;
  let last = 0;
  let result;
  try {
    result = await verifyAudit(where, {
      ...(keys === undefined ? {} : { keys }),
      liveTail: true,
      onEnd: (seq) => (last = seq),
      onCheckpoint: (r) => {
        if (r.seq === c.seq) found = r;
      },
    });
  } catch (e) {
    return fail(`cannot read its audit log at ${where} (${(e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : 'error')})`);
  }
  if (!result.ok) return fail(`${result.file}:${result.line}: ${result.problem}`);
  if (last < c.seq) {
    return fail(`its log at ${where} ends at seq ${last}, before its last checkpoint in the state store (seq ${c.seq}, in ${c.file}): ${c.seq - last} or more records are missing`);
  }
  const record = found as AuditRecord | null;
  if (record === null) return fail(`record seq ${c.seq} in ${where} is not the signed checkpoint the state store holds (the log was rewritten)`);
  const e = fieldsOf(record.event);
  if (e.head !== c.head || e.headSeq !== c.headSeq || e.sig !== c.sig || e.key !== c.keyId) {
    return fail(`the checkpoint at seq ${c.seq} in ${where} differs from the one in the state store (the log was rewritten)`);
  }
  return { node: n.node, ok: true, line: `${n.node}: ok ${result.count} records; chain verified through its last stored checkpoint (seq ${c.seq}, key ${c.keyId}${keys?.pinned === true ? ', pinned' : ''}) in ${where}` };
}

/** Every node, one line each; exit 1 when any fails or the store has no checkpoint at all. */
export async function verifyFleet(nodes: FleetCheckpoint[], dirs: Map<string, string>, keys?: CheckpointKeys): Promise<{ exitCode: 0 | 1; text: string }> {
  if (nodes.length === 0) return { exitCode: 1, text: 'no node has published a signed checkpoint to the state store yet\n' };
  const unknown = [...dirs.keys()].filter((k) => !nodes.some((n) => n.node === k));
  const results = await Promise.all(nodes.map((n) => verifyNode(n, dirs.get(n.node), keys)));
  const lines = results.map((r) => r.line);
  for (const k of unknown) lines.push(`${k}: FAIL --node-dir names a node with no checkpoint in the state store`);
  return { exitCode: results.every((r) => r.ok) && unknown.length === 0 ? 0 : 1, text: `${lines.join('\n')}\n` };
}
