import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { appendFile, chmod, mkdir, readdir, readFile, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyAudit, type AuditRecord } from '../../src/audit/index.js';
import { fileName } from '../../src/audit/files.js';
import { AirlockError } from '../../src/util/errors.js';
import { Secret } from '../../src/secrets/index.js';
import { action, auditFiles, openLog, readLinesOf, tempState, writeLines, type TempState } from '../../src/audit/testing.js';

let t: TempState;
beforeEach(async () => {
  t = await tempState();
});
afterEach(async () => {
  vi.useRealTimers();
  await t.cleanup();
});

describe('group commit', () => {
  it('many concurrent appends all resolve, in seq order, sharing syncs', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    const n = 300;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => log.append(action(`s${i % 8}`, `SELECT ${i}`))));
    expect(results.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(results.map((r) => (r.event as { action: { text: string } }).action.text)).toEqual(Array.from({ length: n }, (_, i) => `SELECT ${i}`));
    expect(log.stats.appends).toBe(n);
    expect(log.stats.batches).toBeLessThan(n);
    await log.close();
    expect(await verifyAudit(t.dir)).toEqual({ ok: true, count: n });
  });

  it('appends arriving while a batch is syncing join the next batch', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    const first = log.append(action('s1', 'SELECT 1'));
    await Promise.resolve();
    const rest = Array.from({ length: 50 }, (_, i) => log.append(action('s2', `SELECT ${i}`)));
    await Promise.all([first, ...rest]);
    expect(log.stats.batches).toBeLessThanOrEqual(2);
    await log.close();
  });
});

describe('audit log failure and recovery', () => {
  it('refuses with AIRLOCK_AUDIT_UNAVAILABLE while the directory is gone, then recovers (a file in its place: works as root)', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    await log.append(action('s1', 'SELECT 1'));
    await rename(t.dir, `${t.dir}.moved`);
    await writeFile(t.dir, '');
    const refused = log.append(action('s1', 'SELECT 2'));
    await expect(refused).rejects.toBeInstanceOf(AirlockError);
    await expect(refused).rejects.toMatchObject({ code: 'AIRLOCK_AUDIT_UNAVAILABLE' });
    expect(log.healthy).toBe(false);
    // Still refusing on the next try.
    await expect(log.append(action('s1', 'SELECT 3'))).rejects.toMatchObject({ code: 'AIRLOCK_AUDIT_UNAVAILABLE' });
    await unlink(t.dir);
    await rename(`${t.dir}.moved`, t.dir);
    const r = await log.append(action('s1', 'SELECT 4'));
    expect(r.seq).toBe(2);
    expect(log.healthy).toBe(true);
    await log.close();
    expect(await verifyAudit(t.dir)).toEqual({ ok: true, count: 2 });
    const text = (await Promise.all((await auditFiles(t.dir)).map((f) => readFile(f, 'utf8')))).join('');
    expect(text).not.toContain('SELECT 2');
    expect(text).not.toContain('SELECT 3');
  });

  it('rolls back a batch that failed halfway (next file blocked by a directory): the failed events are not in the chain', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0, maxFileBytes: 700 });
    await log.append(action('s1', 'SELECT 0'));
    const [first = ''] = await auditFiles(t.dir);
    const before = (await stat(first)).size;
    const day = new Date().toISOString().slice(0, 10);
    const blocker = join(t.dir, fileName(day, 1));
    await mkdir(blocker);
    // One batch: the first lines fit the current file, the rest need the blocked next one.
    const batch = Array.from({ length: 6 }, (_, i) => log.append(action('s1', `SELECT ${i + 1}`)));
    const settled = await Promise.allSettled(batch);
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(log.healthy).toBe(false);
    expect((await stat(first)).size).toBe(before);
    await rmdir(blocker);
    const r = await log.append(action('s1', 'SELECT 7'));
    expect(r.seq).toBe(2);
    await log.close();
    expect(await verifyAudit(t.dir)).toEqual({ ok: true, count: 2 });
  });

  it('under concurrent load across a failure: exactly the resolved appends are in the log, and it verifies', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 50 });
    const resolved = new Set<string>();
    const refused = new Set<string>();
    let breaking: Promise<void> | null = null;
    let restored = false;
    const appender = async (a: number): Promise<void> => {
      for (let i = 0; i < 40; i++) {
        const text = `SELECT ${a}, ${i}`;
        try {
          await log.append(action(`s${a}`, text));
          resolved.add(text);
        } catch (e) {
          expect(e).toMatchObject({ code: 'AIRLOCK_AUDIT_UNAVAILABLE' });
          refused.add(text);
        }
        if (breaking === null && resolved.size >= 150) {
          breaking = (async () => {
            await rename(t.dir, `${t.dir}.moved`);
            await writeFile(t.dir, '');
          })();
          await breaking;
        } else if (breaking !== null && !restored && refused.size >= 40) {
          restored = true;
          await breaking;
          await unlink(t.dir);
          await rename(`${t.dir}.moved`, t.dir);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, a) => appender(a)));
    await log.close();
    expect(restored).toBe(true);
    expect(refused.size).toBeGreaterThan(0);
    const logged = new Set<string>();
    for (const f of await auditFiles(t.dir)) {
      for (const l of await readLinesOf(f)) {
        const r = JSON.parse(l) as AuditRecord;
        if (r.event.type === 'action') logged.add((r.event as { action: { text: string } }).action.text);
      }
    }
    expect([...logged].sort()).toEqual([...resolved].sort());
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: true });
  });

  it('cuts a torn last line on reopen and records that it did', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    for (let i = 0; i < 3; i++) await log.append(action('s1', `SELECT ${i}`));
    await log.close();
    const [file = ''] = await auditFiles(t.dir);
    const torn = '{"seq":4,"ts":"2030-01-01T00:00:00.000Z","node":"test-no';
    await appendFile(file, torn);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file, line: 4, problem: expect.stringMatching(/unfinished/) });
    const reopened = await openLog(t.dir, { checkpointEvery: 0 });
    await reopened.append(action('s1', 'SELECT after'));
    await reopened.close();
    const lines = (await readLinesOf(file)).map((l) => JSON.parse(l) as AuditRecord);
    expect(lines[3]?.event).toEqual({ type: 'audit.recovered', file: file.split('/').pop(), offset: expect.any(Number), bytes: Buffer.byteLength(torn) });
    expect(lines[4]?.seq).toBe(5);
    expect(await verifyAudit(t.dir)).toEqual({ ok: true, count: 5 });
  });

  it('a newest file holding only a torn line (crash right after rotation) is emptied; the head comes from the file before', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    await log.append(action('s1', 'SELECT 1'));
    await log.close();
    const day = new Date().toISOString().slice(0, 10);
    await writeFile(join(t.dir, fileName(day, 1)), '{"seq":2,"ts"');
    const reopened = await openLog(t.dir, { checkpointEvery: 0 });
    const r = await reopened.append(action('s1', 'SELECT 2'));
    await reopened.close();
    expect(r.seq).toBe(3);
    expect(await verifyAudit(t.dir)).toEqual({ ok: true, count: 3 });
  });

  it('will not continue from a complete but invalid last line', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    await log.append(action('s1', 'SELECT 1'));
    await log.append(action('s1', 'SELECT 2'));
    await log.close();
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    lines[1] = (lines[1] ?? '').replace('SELECT 2', 'SELECT 3');
    await writeLines(file, lines);
    await expect(openLog(t.dir, { checkpointEvery: 0 })).rejects.toMatchObject({ code: 'AIRLOCK_AUDIT_UNAVAILABLE' });
  });

  it('rejects appends after close', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    await log.close();
    await expect(log.append(action('s1', 'SELECT 1'))).rejects.toMatchObject({ code: 'AIRLOCK_AUDIT_UNAVAILABLE' });
  });
});

describe('the writer notices a changed directory without a stat per batch', () => {
  // The writer thread watches the directory and fstats its descriptor instead of stat'ing the
  // path before every batch; a file moved, replaced or deleted under it is still never written to.
  for (const [what, change] of [
    ['moved away', (file: string) => rename(file, `${file}.bak`)],
    ['deleted', (file: string) => unlink(file)],
    ['replaced by another file', async (file: string) => {
      await rename(file, `${file}.bak`);
      await writeFile(file, '');
    }],
  ] as const) {
    it(`the current file ${what}: the next record goes to a file at the path, not the old descriptor`, async () => {
      const log = await openLog(t.dir, { checkpointEvery: 0 });
      await log.append(action('s1', 'SELECT 1'));
      const [file = ''] = await auditFiles(t.dir);
      await change(file);
      await log.append(action('s1', 'SELECT 2'));
      await log.close();
      expect(await readFile(file, 'utf8')).toContain('SELECT 2');
      const old = await readFile(`${file}.bak`, 'utf8').catch(() => '');
      expect(old).not.toContain('SELECT 2');
    });
  }

  it.skipIf(process.getuid?.() === 0)('a directory made read-only is refused at the next append (root may write anyway), and writable again recovers', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    await log.append(action('s1', 'SELECT 1'));
    await chmod(t.dir, 0o500);
    await expect(log.append(action('s1', 'SELECT 2'))).rejects.toMatchObject({ code: 'AIRLOCK_AUDIT_UNAVAILABLE' });
    await chmod(t.dir, 0o700);
    expect((await log.append(action('s1', 'SELECT 3'))).seq).toBe(2);
    await log.close();
  });
});

describe('retention', () => {
  async function daysOfLog(): Promise<{ files: string[] }> {
    vi.useFakeTimers({ toFake: ['Date'] });
    const log = await openLog(t.dir, { checkpointEvery: 3 });
    for (const day of ['2024-01-01', '2024-01-02', '2024-03-01']) {
      vi.setSystemTime(new Date(`${day}T12:00:00Z`));
      for (let i = 0; i < 2; i++) await log.append(action('s1', `SELECT '${day}' ${i}`));
    }
    const files = await log.prune(30 * 86_400_000);
    await log.close();
    return { files };
  }

  it('prunes whole day files past the age, logs it, and verify accepts the new start', async () => {
    const { files } = await daysOfLog();
    expect(files).toEqual(['2024-01-01.000.jsonl', '2024-01-02.000.jsonl']);
    expect(await readdir(t.dir)).toEqual(['2024-03-01.000.jsonl']);
    const records = (await readLinesOf(join(t.dir, '2024-03-01.000.jsonl'))).map((l) => JSON.parse(l) as AuditRecord);
    const pruned = records.find((r) => r.event.type === 'audit.pruned');
    expect(pruned?.event).toMatchObject({ files, before: { seq: (records[0]?.seq ?? 0) - 1, hash: records[0]?.prev } });
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: true });
  });

  it('files deleted beyond what was pruned are caught', async () => {
    await daysOfLog();
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    await writeLines(file, lines.slice(1));
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: false, file, line: 1, problem: expect.stringMatching(/vouches/) });
  });

  it('a prune interrupted between files still verifies (the event is written first)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    for (const day of ['2024-01-01', '2024-01-02', '2024-03-01']) {
      vi.setSystemTime(new Date(`${day}T12:00:00Z`));
      await log.append(action('s1', `SELECT '${day}'`));
    }
    const [oldest = ''] = await auditFiles(t.dir);
    // What prune writes before deleting, then a crash after the first unlink.
    const before = JSON.parse((await readLinesOf(join(t.dir, '2024-01-02.000.jsonl')))[0] ?? '') as AuditRecord;
    await log.append({ type: 'audit.pruned', files: ['2024-01-01.000.jsonl', '2024-01-02.000.jsonl'], before: { seq: before.seq, hash: before.hash } });
    await log.close();
    await unlink(oldest);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: true, count: 3 });
  });
});

describe('no secret reaches the files', () => {
  it('password literals are scrubbed and Secret values serialise as [secret]', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 2 });
    await log.append({
      type: 'session.start',
      session: 's1',
      identity: { subject: 'alice', issuer: 'https://idp', groups: ['dba'], kind: 'human' },
      connection: 'appdb',
      protocol: 'postgres',
      client: { address: '127.0.0.1', port: 5555 },
      lease: 'lease-1',
    });
    await log.append(action('s1', "ALTER ROLE app PASSWORD 'hunter2-pg'"));
    await log.append({ type: 'approval.requested', approval: { id: 'a1', sessionId: 's1', summary: "CREATE USER 'u'@'%' IDENTIFIED BY 'hunter2-my'" } });
    await log.append({ type: 'other.protocol', credential: new Secret('hunter2-secret') });
    await log.close();
    const all = await readdir(t.state, { recursive: true });
    for (const f of all) {
      const p = join(t.state, f);
      if (!(await stat(p)).isFile()) continue;
      const text = await readFile(p, 'utf8');
      expect(text).not.toMatch(/hunter2/);
    }
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: true });
  });
});
