/** Temp-dir helpers for the audit tests (kept beside the log, as pg-protocol keeps src/testing). */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditLogOptions } from './log.js';
import { listAuditFiles } from './files.js';

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
