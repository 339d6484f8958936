import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * This node's id, stable across restarts: `state_dir/node-id`, created once as the
 * host name plus a random suffix (two nodes on one host still differ). It tags the
 * ephemeral roles this node creates, so nodes sharing an upstream never sweep each
 * other's live roles.
 */
export function nodeId(stateDir: string): string {
  const file = join(stateDir, 'node-id');
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (existing !== '') return existing;
  } catch {
    // first start
  }
  mkdirSync(stateDir, { recursive: true });
  const host = hostname().toLowerCase().replace(/[^a-z0-9.-]+/g, '-').slice(0, 40) || 'node';
  const id = `${host}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(file, `${id}\n`, { flag: 'wx', mode: 0o644 });
    return id;
  } catch {
    // another process won the race: use its id
    return readFileSync(file, 'utf8').trim();
  }
}
