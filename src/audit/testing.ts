/** Temp-dir helpers for the audit tests (kept beside the log, as pg-protocol keeps src/testing). */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sign, type KeyObject } from 'node:crypto';
import { AuditLog, type AuditLogOptions } from './log.js';
import { listAuditFiles } from './files.js';
import { recordHash, recordLine } from './canonical.js';
import { GENESIS_HASH, type AuditEventBody, type AuditRecord } from './types.js';

export interface TempState {
  state: string;
  dir: string;
  cleanup(): Promise<void>;
}

export async function tempState(): Promise<TempState> {
  const state = await mkdtemp(join(tmpdir(), 'airlock-audit-'));
  return { state, dir: join(state, 'audit'), cleanup: () => rm(state, { recursive: true, force: true }) };
}

export function openLog(dir: string, opts: Partial<AuditLogOptions> = {}): Promise<AuditLog> {
  return AuditLog.open({ dir, node: 'test-node', ...opts });
}

export function action(session: string, text: string): { type: 'action'; session: string; action: { kind: string; text: string }; decision: 'allow'; rules: string[] } {
  return { type: 'action', session, action: { kind: 'sql', text }, decision: 'allow', rules: [] };
}

/** Paths of the audit files in chain order. */
export async function auditFiles(dir: string): Promise<string[]> {
  return (await listAuditFiles(dir)).map((f) => join(dir, f.name));
}

export async function readLinesOf(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return text.split('\n').slice(0, -1);
}

export async function writeLines(path: string, lines: string[]): Promise<void> {
  await writeFile(path, lines.map((l) => `${l}\n`).join(''));
}

/**
 * Rewrites a whole log as someone who can write the files (but has no airlock key) would: each
 * event through `edit`, the chain re-linked, every checkpoint re-signed with `key` and named `keyId`.
 */
export async function forgeLog(dir: string, key: KeyObject, keyId: string, edit: (r: AuditRecord) => AuditEventBody = (r) => r.event): Promise<void> {
  let prev = GENESIS_HASH;
  for (const file of await auditFiles(dir)) {
    const out: string[] = [];
    for (const line of await readLinesOf(file)) {
      const r = JSON.parse(line) as AuditRecord;
      let event = edit(r);
      if (event.type === 'checkpoint') event = { ...event, head: prev, key: keyId, sig: sign(null, Buffer.from(prev, 'utf8'), key).toString('base64') };
      const head = { ...r, prev, event };
      const next = { ...head, hash: recordHash(head) };
      prev = next.hash;
      out.push(recordLine(next));
    }
    await writeLines(file, out);
  }
}
