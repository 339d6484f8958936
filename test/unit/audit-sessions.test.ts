import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  auditVerifyCommand,
  listSessions,
  readEvents,
  renderSessionList,
  renderTranscript,
  replayTranscript,
  sessionTranscript,
  type AuditEventBody,
  type AuditLog,
  type AuditRecord,
} from '../../src/audit/index.js';
import { auditFiles, openLog, readLinesOf, tempState, writeLines, type TempState } from '../../src/audit/testing.js';

let t: TempState;
beforeEach(async () => {
  t = await tempState();
});
afterEach(async () => {
  vi.useRealTimers();
  await t.cleanup();
});

function start(session: string, subject: string, connection: string): AuditEventBody {
  return {
    type: 'session.start',
    session,
    identity: { subject, issuer: 'https://idp', groups: ['dev'], kind: 'human' },
    connection,
    protocol: 'postgres',
    client: { address: '10.0.0.7', port: 40000 },
    lease: `lease-${session}`,
  };
}

async function twoSessions(log: AuditLog): Promise<void> {
  await log.append(start('s1', 'alice', 'appdb'));
  await log.append(start('s2', 'bob', 'billing'));
  await log.append({ type: 'action', session: 's1', action: { kind: 'sql', text: 'SELECT * FROM users' }, decision: 'allow', rules: ['mask-pii'] });
  await log.append({ type: 'result', session: 's1', rows: 3, bytes: 120, durationMs: 4, maskedColumns: ['users.ssn'] });
  await log.append({ type: 'action', session: 's2', action: { kind: 'sql', text: 'DROP TABLE invoices' }, decision: 'deny', rules: ['no-drop'], rule: 'no-drop', reason: 'DROP is not allowed' });
  await log.append({ type: 'action', session: 's1', action: { kind: 'sql', text: 'DELETE FROM orders' }, decision: 'hold', rules: ['approve-delete'], rule: 'approve-delete', reason: 'needs approval' });
  await log.append({ type: 'approval.requested', approval: { id: 'ab12cd34', sessionId: 's1', status: 'pending', rule: 'approve-delete' } });
  await log.append({ type: 'approval.decided', approval: { id: 'ab12cd34', sessionId: 's1', status: 'approved', rule: 'approve-delete', decidedBy: 'carol', reason: 'ok' } });
  await log.append({ type: 'session.end', session: 's1', reason: 'client closed', durationMs: 900 });
}

describe('sessions from the audit log', () => {
  it('lists sessions with counts, filtered by subject and connection', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    await twoSessions(log);
    await log.close();
    const all = await listSessions(t.dir, {});
    expect(all.map((s) => s.session)).toEqual(['s1', 's2']);
    expect(all[0]).toMatchObject({ subject: 'alice', connection: 'appdb', client: '10.0.0.7:40000', actions: 2, denied: 0, held: 1, endReason: 'client closed' });
    expect(all[1]).toMatchObject({ subject: 'bob', actions: 1, denied: 1, endedAt: null });
    expect((await listSessions(t.dir, { subject: 'bob' })).map((s) => s.session)).toEqual(['s2']);
    expect((await listSessions(t.dir, { connection: 'appdb' })).map((s) => s.session)).toEqual(['s1']);
    expect(await listSessions(t.dir, { sinceMs: Date.now() + 60_000 })).toEqual([]);
    const table = renderSessionList(all);
    expect(table.split('\n')[0]).toMatch(/^SESSION\s+STARTED/);
    expect(table).toContain('alice');
  });

  it('shows one session as an ordered transcript, approvals included', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    await twoSessions(log);
    await log.close();
    const records = await sessionTranscript(t.dir, 's1');
    expect(records.map((r) => r.event.type)).toEqual(['session.start', 'action', 'result', 'action', 'approval.requested', 'approval.decided', 'session.end']);
    const text = renderTranscript(records);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(7);
    expect(lines[0]).toMatch(/session\.start\s+alice \(human, https:\/\/idp, groups dev\) to appdb \[postgres\] from 10\.0\.0\.7:40000, lease lease-s1/);
    expect(lines[1]).toMatch(/ALLOW \[mask-pii\] SELECT \* FROM users$/);
    expect(lines[2]).toMatch(/3 rows, 120 bytes, 4 ms masked users\.ssn$/);
    expect(lines[3]).toMatch(/HOLD \[approve-delete\] \(approve-delete: needs approval\) DELETE FROM orders$/);
    expect(lines[5]).toMatch(/ab12cd34 approved \(rule approve-delete\) by carol: ok$/);
  });

  it('readEvents filters by type', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    await twoSessions(log);
    await log.close();
    const seqs: number[] = [];
    for await (const r of readEvents(t.dir, { types: ['action'] })) seqs.push(r.seq);
    expect(seqs).toEqual([3, 5, 6]);
  });

  it('replays paced by the recorded gaps, divided by speed', async () => {
    const records: AuditRecord[] = [0, 2000, 2500].map((ms, i) => ({
      seq: i + 1,
      ts: new Date(Date.UTC(2024, 0, 1) + ms).toISOString(),
      node: 'n',
      prev: '0'.repeat(64),
      hash: '0'.repeat(64),
      event: { type: 'session.end', session: 's', reason: `r${i}` },
    }));
    vi.useFakeTimers();
    const out: string[] = [];
    const done = replayTranscript(records, { speed: 10, write: (l) => out.push(l) });
    await vi.advanceTimersByTimeAsync(0);
    expect(out).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(199);
    expect(out).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(out).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(50);
    await done;
    expect(out).toHaveLength(3);
    expect(out[2]).toContain('r2');
  });
});

describe('audit verify command', () => {
  it('prints ok and the count, exit 0; file:line and the problem, exit 1', async () => {
    const log = await openLog(t.dir, { checkpointEvery: 0 });
    await twoSessions(log);
    await log.close();
    expect(await auditVerifyCommand(t.dir)).toEqual({ exitCode: 0, text: 'ok 9 events\n' });
    const [file = ''] = await auditFiles(t.dir);
    const lines = await readLinesOf(file);
    lines[4] = (lines[4] ?? '').replace('DROP TABLE', 'SELECT FROM');
    await writeLines(file, lines);
    const r = await auditVerifyCommand(t.dir);
    expect(r.exitCode).toBe(1);
    expect(r.text).toBe(`${file}:5: hash mismatch: record seq 5 was altered\n`);
  });
});
