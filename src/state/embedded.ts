/**
 * The embedded state store: two append-only JSON-lines files under state_dir/state, each
 * line written with one write and fsynced before the call resolves. Writes are rare (an
 * approval verdict, a grant), so a file is enough; a torn last line left by a crash is skipped
 * on load, and load rewrites each file with only what is still worth keeping.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { ApprovalRequest } from '../approvals/index.js';
import type { StateStore, StoredGrant } from './types.js';

const GRANTS = 'grants.jsonl';
const APPROVALS = 'approvals.jsonl';

export class EmbeddedStateStore implements StateStore {
  readonly backend = 'embedded' as const;
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'state');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  async loadGrants(now: number): Promise<StoredGrant[]> {
    const live = this.read<StoredGrant>(GRANTS).filter((g) => isGrant(g) && g.expiresAt > now);
    this.rewrite(GRANTS, live);
    return live;
  }

  async saveGrant(grant: StoredGrant): Promise<void> {
    this.append(GRANTS, grant);
  }

  async loadDecided(limit: number): Promise<ApprovalRequest[]> {
    const decided = this.read<ApprovalRequest>(APPROVALS).filter((r) => typeof r?.id === 'string' && r.status !== 'pending');
    const kept = decided.slice(-limit);
    this.rewrite(APPROVALS, kept);
    return kept;
  }

  async saveDecided(request: ApprovalRequest): Promise<void> {
    this.append(APPROVALS, request);
  }

  async reachable(): Promise<boolean> {
    return existsSync(this.dir);
  }

  async close(): Promise<void> {}

  private read<T>(name: string): T[] {
    const file = join(this.dir, name);
    if (!existsSync(file)) return [];
    const out: T[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        out.push(JSON.parse(line) as T);
      } catch {
        // A line cut off by a crash mid-write: it never resolved, so nobody relied on it.
      }
    }
    return out;
  }

  private append(name: string, value: unknown): void {
    const fd = openSync(join(this.dir, name), 'a', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(value)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  private rewrite(name: string, values: unknown[]): void {
    const tmp = join(this.dir, `${name}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, values.map((v) => `${JSON.stringify(v)}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, name));
  }
}

function isGrant(g: StoredGrant): boolean {
  return typeof g?.subject === 'string' && typeof g.connection === 'string' && typeof g.expiresAt === 'number' && typeof g.requestId === 'string';
}
