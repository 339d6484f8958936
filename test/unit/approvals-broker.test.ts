import { afterEach, describe, expect, it, vi } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ApprovalBroker,
  ApprovedStatements,
  WebhookNotifier,
  holdMessage,
  type ApprovalEvent,
  type ApprovalRequest,
  type ApprovalRequestInput,
} from '../../src/approvals/index.js';
import { AirlockError } from '../../src/util/errors.js';
import type { Identity } from '../../src/core/types.js';

function who(subject: string, groups: string[] = []): Identity {
  return { subject, issuer: 'https://idp', groups, kind: 'human', expiresAt: Date.now() + 3_600_000 };
}

const alice = who('alice', ['dev', 'dba']);
const bob = who('bob', ['dba']);
const carol = who('carol', ['dev']);

function input(over: Partial<ApprovalRequestInput> = {}): ApprovalRequestInput {
  return {
    sessionId: 's1',
    requester: alice,
    connection: 'appdb',
    action: { kind: 'shell', command: 'systemctl restart app' },
    summary: 'DELETE FROM orders WHERE id = 1',
    rule: 'orders-writes-need-a-dba',
    approvers: ['dba'],
    timeoutMs: 600_000,
    ...over,
  };
}

function forbidden(fn: () => unknown, message: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AirlockError);
    expect((e as AirlockError).code).toBe('AIRLOCK_FORBIDDEN');
    expect((e as AirlockError).message).toMatch(message);
    return;
  }
  throw new Error('expected AIRLOCK_FORBIDDEN');
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ApprovalBroker', () => {
  it('approve: the verdict resolves approved, events fire, the request records who and when', async () => {
    const broker = new ApprovalBroker();
    const events: string[] = [];
    broker.on('requested', (r: ApprovalRequest) => events.push(`requested ${r.status}`));
    broker.on('decided', (r: ApprovalRequest) => events.push(`decided ${r.status}`));
    const held = broker.request(input());
    expect(held.id).toMatch(/^[0-9a-f]{8,}$/);
    expect(held.granted).toBe(false);
    expect(broker.get(held.id)?.status).toBe('pending');
    expect(broker.list({ status: 'pending', approverGroups: ['dba'] }).map((r) => r.id)).toEqual([held.id]);
    expect(broker.list({ approverGroups: ['dev'] })).toEqual([]);

    const r = broker.decide(held.id, bob, true, 'looks fine');
    expect(r).toMatchObject({ status: 'approved', decidedBy: 'bob', reason: 'looks fine' });
    await expect(held.verdict).resolves.toEqual({ approved: true, reason: 'looks fine', by: 'bob' });
    expect(events).toEqual(['requested pending', 'decided approved']);
    expect(broker.list({ status: 'pending' })).toEqual([]);
  });

  it("deny: the requester gets the approver's reason", async () => {
    const broker = new ApprovalBroker();
    const held = broker.request(input());
    broker.decide(held.id, bob, false, 'not during business hours');
    await expect(held.verdict).resolves.toEqual({ approved: false, reason: 'not during business hours', by: 'bob' });
    const bare = broker.request(input());
    broker.decide(bare.id, bob, false);
    await expect(bare.verdict).resolves.toMatchObject({ approved: false, reason: 'denied by bob' });
  });

  it('timeout: expires after timeoutMs (fake timers)', async () => {
    vi.useFakeTimers();
    const broker = new ApprovalBroker();
    const held = broker.request(input({ timeoutMs: 10 * 60_000 }));
    let settled = false;
    void held.verdict.then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(10 * 60_000 - 1);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expect(held.verdict).resolves.toEqual({ approved: false, reason: 'no approver decided within 10m' });
    expect(broker.get(held.id)?.status).toBe('expired');
    forbidden(() => broker.decide(held.id, bob, true), /already expired/);
  });

  it('refuses self-approval, non-approvers and a second decision', async () => {
    const broker = new ApprovalBroker();
    const held = broker.request(input());
    forbidden(() => broker.decide(held.id, alice, true), /nobody may approve their own request/);
    forbidden(() => broker.decide(held.id, carol, true), /only members of dba/);
    forbidden(() => broker.decide(held.id, carol, false), /only members of dba/);
    expect(broker.get(held.id)?.status).toBe('pending');
    broker.decide(held.id, bob, true);
    forbidden(() => broker.decide(held.id, who('dave', ['dba']), false), /already approved by bob/);
    await expect(held.verdict).resolves.toMatchObject({ approved: true });
  });

  it('an approver may withdraw (deny) their own request', async () => {
    const broker = new ApprovalBroker();
    const held = broker.request(input());
    broker.decide(held.id, alice, false, 'never mind');
    await expect(held.verdict).resolves.toMatchObject({ approved: false, reason: 'never mind' });
  });

  it('unknown ids are refused', () => {
    const broker = new ApprovalBroker();
    expect(() => broker.decide('deadbeef', bob, true)).toThrow(/no approval request deadbeef/);
  });

  it('abort (session closed) cancels; other requests are unaffected', async () => {
    const broker = new ApprovalBroker();
    const ac = new AbortController();
    const held = broker.request(input(), ac.signal);
    const other = broker.request(input({ sessionId: 's2' }));
    ac.abort();
    await expect(held.verdict).resolves.toMatchObject({ approved: false, reason: 'the session ended before a decision' });
    expect(broker.get(held.id)?.status).toBe('cancelled');
    expect(broker.get(other.id)?.status).toBe('pending');
    const already = broker.request(input(), ac.signal);
    await expect(already.verdict).resolves.toMatchObject({ approved: false });
  });

  it('grant_for: an approved connect admits later connects by the same subject until expiry', async () => {
    vi.useFakeTimers();
    const broker = new ApprovalBroker();
    const first = broker.request(input({ action: { kind: 'connect' }, summary: 'connect to prod', connection: 'prod', grantForMs: 3_600_000 }));
    expect(broker.hasGrant('alice', 'prod')).toBe(false);
    broker.decide(first.id, bob, true);
    await expect(first.verdict).resolves.toMatchObject({ approved: true });
    expect(broker.hasGrant('alice', 'prod')).toBe(true);
    expect(broker.hasGrant('alice', 'other')).toBe(false);
    expect(broker.hasGrant('carol', 'prod')).toBe(false);

    const again = broker.request(input({ action: { kind: 'connect' }, summary: 'connect to prod', connection: 'prod', grantForMs: 3_600_000 }));
    expect(again).toMatchObject({ id: first.id, granted: true });
    await expect(again.verdict).resolves.toMatchObject({ approved: true, by: 'bob' });
    expect(broker.list({ status: 'pending' })).toEqual([]);

    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(broker.hasGrant('alice', 'prod')).toBe(false);
    const later = broker.request(input({ action: { kind: 'connect' }, summary: 'connect to prod', connection: 'prod', grantForMs: 3_600_000 }));
    expect(later.granted).toBe(false);
    expect(broker.get(later.id)?.status).toBe('pending');
  });

  it('grant_for: the approver may choose a shorter window or none, never a longer one', async () => {
    vi.useFakeTimers();
    const broker = new ApprovalBroker();
    const connect = { action: { kind: 'connect' as const }, summary: 'connect to prod', connection: 'prod', grantForMs: 3_600_000 };
    const first = broker.request(input(connect));
    expect(() => broker.decide(first.id, bob, true, undefined, { grantForMs: 3_600_001 })).toThrow(/at most 1h/);
    expect(() => broker.decide(first.id, bob, true, undefined, { grantForMs: 0 })).toThrow(/positive/);
    expect(broker.get(first.id)?.status).toBe('pending');
    broker.decide(first.id, bob, true, undefined, { grantForMs: 60_000 });
    await first.verdict;
    expect(broker.get(first.id)?.grantForMs).toBe(60_000);
    expect(broker.hasGrant('alice', 'prod')).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(broker.hasGrant('alice', 'prod')).toBe(false);

    const once = broker.request(input(connect));
    broker.decide(once.id, bob, true, undefined, { grantForMs: null });
    await expect(once.verdict).resolves.toMatchObject({ approved: true });
    expect(broker.hasGrant('alice', 'prod')).toBe(false);
    // A rule without grant_for offers no window at all.
    const stmt = broker.request(input());
    expect(() => broker.decide(stmt.id, bob, true, undefined, { grantForMs: 60_000 })).toThrow(/allows no grant_for/);
  });

  it('a statement approval grants nothing beyond itself', async () => {
    const broker = new ApprovalBroker();
    const held = broker.request(input({ grantForMs: 3_600_000 }));
    broker.decide(held.id, bob, true);
    await held.verdict;
    expect(broker.hasGrant('alice', 'appdb')).toBe(false);
  });

  it('redacts credential-bearing HTTP headers in what it keeps', () => {
    const broker = new ApprovalBroker();
    const held = broker.request(
      input({ action: { kind: 'http', method: 'DELETE', path: '/x', headers: { authorization: 'Bearer s3cret', 'content-type': 'text/plain' } } }),
    );
    const kept = broker.get(held.id);
    expect(JSON.stringify(kept)).not.toContain('s3cret');
    expect(kept?.action).toMatchObject({ headers: { 'content-type': 'text/plain' } });
  });

  it('a throwing listener does not break the broker', async () => {
    const broker = new ApprovalBroker();
    broker.on('requested', () => {
      throw new Error('listener bug');
    });
    const held = broker.request(input());
    broker.decide(held.id, bob, true);
    await expect(held.verdict).resolves.toMatchObject({ approved: true });
  });
});

describe('holdMessage', () => {
  it('names the action kind and the approve command', () => {
    expect(holdMessage('7f3a2c01')).toBe('airlock: statement held for approval (id 7f3a2c01) — approve with: airlock approvals approve 7f3a2c01');
    expect(holdMessage('ab12cd34', 'shell')).toMatch(/^airlock: command held/);
    expect(holdMessage('ab12cd34', 'http')).toMatch(/^airlock: request held/);
    expect(holdMessage('ab12cd34', 'connect')).toMatch(/^airlock: connection held/);
  });
});

describe('ApprovedStatements', () => {
  it('remembers text per session and forgets the oldest beyond its limit', () => {
    const approved = new ApprovedStatements(2);
    approved.remember('s1', 'DELETE FROM t WHERE id = $1');
    expect(approved.has('s1', 'DELETE FROM t WHERE id = $1')).toBe(true);
    expect(approved.has('s2', 'DELETE FROM t WHERE id = $1')).toBe(false);
    approved.remember('s1', 'b');
    approved.remember('s1', 'c');
    expect(approved.has('s1', 'DELETE FROM t WHERE id = $1')).toBe(false);
    expect(approved.has('s1', 'c')).toBe(true);
    approved.forget('s1');
    expect(approved.has('s1', 'c')).toBe(false);
  });
});

describe('WebhookNotifier against a real HTTP server', () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())));
    server = null;
  });

  async function receiver(statuses: number[]): Promise<{ url: string; bodies: unknown[]; hits: () => number }> {
    const bodies: unknown[] = [];
    let hits = 0;
    server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = statuses[hits] ?? 200;
        hits++;
        bodies.push({ status, contentType: req.headers['content-type'], method: req.method, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/hook`, bodies, hits: () => hits };
  }

  it('retries with backoff after two failures, and the body carries a Slack-compatible text', async () => {
    const hook = await receiver([500, 503, 200]);
    const notifier = new WebhookNotifier(hook.url, { baseDelayMs: 5, maxAttempts: 5 });
    const broker = new ApprovalBroker({ notifier });
    const held = broker.request(input({ summary: 'DELETE FROM orders WHERE id < 10' }));
    await notifier.idle();
    expect(hook.hits()).toBe(3);
    const last = hook.bodies[2] as { status: number; contentType: string; method: string; body: { event: string; text: string; request: Record<string, unknown> } };
    expect(last).toMatchObject({ status: 200, method: 'POST', contentType: 'application/json' });
    expect(last.body.event).toBe('approval.requested');
    expect(last.body.request).toMatchObject({ id: held.id, status: 'pending', rule: 'orders-writes-need-a-dba', connection: 'appdb' });
    expect(last.body.text).toContain(`airlock approvals approve ${held.id}`);
    expect(last.body.text).toContain('DELETE FROM orders WHERE id &lt; 10');
    expect(last.body.text).toContain('alice');
  });

  it('sends the verdict too, and gives up on a client error without retrying', async () => {
    const hook = await receiver([200, 400]);
    const notifier = new WebhookNotifier(hook.url, { baseDelayMs: 5 });
    const broker = new ApprovalBroker({ notifier });
    const held = broker.request(input());
    await notifier.idle();
    broker.decide(held.id, bob, false, 'no');
    await notifier.idle();
    expect(hook.hits()).toBe(2);
    const verdict = (hook.bodies[1] as { body: ApprovalEvent & { text: string } }).body;
    expect(verdict.event).toBe('approval.decided');
    expect(verdict.text).toBe(`airlock: request ${held.id} from alice (human) on appdb was denied by bob: no`);
  });

  it('never throws or blocks when the receiver is unreachable', async () => {
    const hook = await receiver([]);
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    server = null;
    const notifier = new WebhookNotifier(hook.url, { baseDelayMs: 1, maxAttempts: 2 });
    const broker = new ApprovalBroker({ notifier });
    const held = broker.request(input());
    expect(broker.get(held.id)?.status).toBe('pending');
    await notifier.idle();
  });
});
