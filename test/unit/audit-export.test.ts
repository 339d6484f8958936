/**
 * Audit exporters against real local receivers: a webhook HTTP server that can fail or go
 * away, and syslog UDP/TCP servers on port 0.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createSocket } from 'node:dgram';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../../src/util/log.js';
import { WebhookExporter, SyslogExporter, startExporters, formatSyslog, frameOctetCounted, exporterFor } from '../../src/audit/exporters/index.js';
import type { AuditRecord } from '../../src/audit/types.js';
import { tempState, openLog, action, type TempState } from '../../src/audit/testing.js';

const silent = createLogger('silent');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function rec(seq: number, extra: Record<string, unknown> = {}): AuditRecord {
  return {
    seq,
    ts: new Date().toISOString(),
    node: 'n1',
    prev: '0'.repeat(64),
    hash: seq.toString(16).padStart(64, '0'),
    event: { type: 'action', session: 's1', action: { kind: 'sql', text: `select ${seq}` }, decision: 'allow', rules: [], ...extra },
  };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Receiver {
  url: string;
  /** Every batch as received (duplicates included). */
  batches: Array<Array<{ id: string; seq: number }>>;
  /** Answer with this status; null: accept. */
  failWith: number | null;
  /** Unique ids in first-arrival order. */
  unique(): string[];
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

async function receiver(): Promise<Receiver> {
  let server: Server;
  let port = 0;
  const r: Receiver = {
    url: '',
    batches: [],
    failWith: null,
    unique() {
      const seen = new Set<string>();
      for (const b of this.batches) for (const e of b) seen.add(e.id);
      return [...seen];
    },
    async down() {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
    async up() {
      await start();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
  const start = async (): Promise<void> => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (r.failWith !== null) {
          res.writeHead(r.failWith).end();
          return;
        }
        const parsed = JSON.parse(body) as { events: Array<{ id: string; seq: number }> };
        r.batches.push(parsed.events.map((e) => ({ id: e.id, seq: e.seq })));
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((res) => server.listen(port, '127.0.0.1', () => res()));
    port = (server.address() as AddressInfo).port;
    r.url = `http://127.0.0.1:${port}/audit`;
  };
  await start();
  return r;
}

async function webhook(r: Receiver, t: TempState, opts: Partial<ConstructorParameters<typeof WebhookExporter>[0]> = {}): Promise<WebhookExporter> {
  const x = new WebhookExporter({ name: 'hook', url: r.url, spoolDir: join(t.state, 'spool'), flushIntervalMs: 20, minBackoffMs: 10, maxBackoffMs: 100, logger: silent, ...opts });
  cleanups.push(() => x.close());
  return x;
}

async function setup(): Promise<{ r: Receiver; t: TempState }> {
  const r = await receiver();
  const t = await tempState();
  cleanups.push(() => r.close(), () => t.cleanup());
  return { r, t };
}

const ids = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `n1:${from + i}`);

describe('webhook exporter', () => {
  it('posts batches of at most batch_size, in seq order, each event with its node:seq id', async () => {
    const { r, t } = await setup();
    const x = await webhook(r, t, { batchSize: 3 });
    for (let i = 1; i <= 7; i++) x.offer(rec(i));
    await until(() => r.unique().length === 7 && x.status().backlog === 0, '7 events');
    expect(r.batches.every((b) => b.length <= 3)).toBe(true);
    expect(r.batches.flat().map((e) => e.id)).toEqual(ids(1, 7));
    expect(x.status()).toMatchObject({ type: 'webhook', backlog: 0, dropped: 0, delivered: 7 });
  });

  it('retries a failing receiver with backoff and shows the backlog and the error (no URL) meanwhile', async () => {
    const { r, t } = await setup();
    r.failWith = 503;
    const x = await webhook(r, t, { url: `${r.url}?token=hunter2` });
    for (let i = 1; i <= 5; i++) x.offer(rec(i));
    await until(() => x.status().lastError === 'HTTP 503', 'a failure');
    expect(x.status().backlog).toBe(5);
    expect(JSON.stringify(x.status())).not.toContain('hunter2');
    r.failWith = null;
    // The receiver sees a batch before the exporter has its response and drops it from the spool.
    await until(() => r.unique().length === 5 && x.status().backlog === 0, 'delivery after recovery');
    expect(r.batches.flat().map((e) => e.id)).toEqual(ids(1, 5));
    expect(x.status().backlog).toBe(0);
  });

  it('a receiver that is down for a while then back gets every event, in order, once per id', async () => {
    const { r, t } = await setup();
    const x = await webhook(r, t, { batchSize: 10 });
    let seq = 0;
    for (; seq < 25; seq++) x.offer(rec(seq + 1));
    await until(() => r.unique().length === 25, 'first events');
    await r.down();
    for (; seq < 80; seq++) x.offer(rec(seq + 1));
    await until(() => x.status().lastError !== null, 'a delivery failure');
    // Flaky on its return: every other request fails.
    let n = 0;
    await r.up();
    const flaky = setInterval(() => (r.failWith = n++ % 2 === 0 ? 500 : null), 15);
    cleanups.push(() => clearInterval(flaky));
    for (; seq < 120; seq++) x.offer(rec(seq + 1));
    await until(() => r.unique().length === 120, 'all events after the outage');
    // Refused requests are not recorded by the receiver, so what it accepted is each id exactly once, in order.
    expect(r.unique()).toEqual(ids(1, 120));
    expect(r.batches.flat().map((e) => e.id)).toEqual(ids(1, 120));
  });

  it('keeps undelivered events in the spool across a restart of the exporter, in order, and does not resend delivered ones', async () => {
    const { r, t } = await setup();
    const first = await webhook(r, t);
    for (let i = 1; i <= 4; i++) first.offer(rec(i));
    await until(() => r.unique().length === 4, 'first 4');
    r.failWith = 500;
    for (let i = 5; i <= 12; i++) first.offer(rec(i));
    await until(() => first.status().lastError === 'HTTP 500', 'failure');
    await first.close();
    r.failWith = null;
    const second = await webhook(r, t);
    await until(() => r.unique().length === 12, 'spooled events after restart');
    expect(r.batches.flat().map((e) => e.id)).toEqual(ids(1, 12));
    expect(second.resumeAfter()).toMatchObject({ seq: 12 });
    // A duplicate offered again (catch-up overlap) is not spooled twice.
    second.offer(rec(12));
    second.offer(rec(13));
    await until(() => r.unique().length === 13, 'event 13');
    expect(r.batches.flat().map((e) => e.id)).toEqual(ids(1, 13));
  });

  it('bounds the spool: the oldest events are dropped and counted, the rest still arrive in order', async () => {
    const { r, t } = await setup();
    r.failWith = 500;
    const pad = 'x'.repeat(400);
    const x = await webhook(r, t, { maxSpoolBytes: 8192 });
    for (let i = 1; i <= 100; i++) x.offer(rec(i, { pad }));
    const s = x.status();
    expect(s.dropped).toBeGreaterThan(0);
    expect(s.backlog + s.dropped).toBe(100);
    r.failWith = null;
    await until(() => x.status().backlog === 0, 'backlog drained');
    const got = r.batches.flat().map((e) => e.seq);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => 101 - got.length + i));
    expect(got.length).toBe(100 - s.dropped);
    // The counter survives a restart.
    await x.close();
    const again = await webhook(r, t, { maxSpoolBytes: 8192 });
    expect(again.status().dropped).toBe(s.dropped);
  });
});

describe('exporters fed by the audit log', () => {
  it('catches up from the audit log on what the spool lost in a crash, then follows live appends', async () => {
    const { r, t } = await setup();
    const log = await openLog(t.dir);
    cleanups.push(() => log.close());
    await log.append(action('s0', 'before any exporter'));
    const spoolDir = join(t.state, 'audit-spool');
    const cfg = { type: 'webhook' as const, url: r.url, batch_size: 100, flush_interval: 20, timeout: 5000, max_spool_bytes: 1 << 20, max_backoff: 100 };
    const x1 = exporterFor(cfg, 0, t.state, silent);
    const running1 = await startExporters(log, [x1], silent);
    r.failWith = 500;
    for (let i = 1; i <= 6; i++) await log.append(action('s1', `select ${i}`));
    await running1.close();
    // A crash lost the spool's lines (not its state): the audit log still has them.
    const spooled = (await readFile(join(spoolDir, 'events.jsonl'), 'utf8')).split('\n').filter((l) => l !== '');
    expect(spooled.length).toBe(6);
    await writeFile(join(spoolDir, 'events.jsonl'), '');
    await writeFile(join(spoolDir, 'state.json'), JSON.stringify({ handled: 1, last: 3, lastTs: new Date().toISOString(), dropped: 0 }));
    r.failWith = null;
    const running2 = await startExporters(log, [exporterFor(cfg, 0, t.state, silent)], silent);
    cleanups.push(() => running2.close());
    await log.append(action('s1', 'live'));
    await until(() => r.unique().length >= 5, `catch-up ${JSON.stringify(running2.status())} ${JSON.stringify(r.batches)}`);
    const seqs = r.batches.flat().map((e) => e.seq);
    // seq 1 predates the exporter; 2..3 were claimed spooled but the file lost them (a torn crash is at least this bad).
    expect(seqs).toEqual([4, 5, 6, 7, 8]);
    // The receiver counts a batch before the exporter has read its answer: the backlog drains just after.
    await until(() => running2.status()[0]?.backlog === 0, `backlog drained ${JSON.stringify(running2.status())}`);
    expect(running2.status()[0]).toMatchObject({ name: 'webhook', backlog: 0 });
  });

  it('an exporter that throws or a receiver that is down never fails or blocks an append', async () => {
    const t = await tempState();
    cleanups.push(() => t.cleanup());
    const log = await openLog(t.dir);
    cleanups.push(() => log.close());
    const throwing = { name: 'bad', resumeAfter: () => null, offer: () => { throw new Error('boom'); }, status: () => ({ name: 'bad', type: 'stdout' as const, backlog: 0, dropped: 0, delivered: 0, lastError: null, lastErrorAt: null }), close: async () => undefined };
    const dead = new WebhookExporter({ name: 'dead', url: 'http://127.0.0.1:9/x', spoolDir: join(t.state, 'spool'), flushIntervalMs: 10, minBackoffMs: 10, maxBackoffMs: 50, logger: silent });
    const running = await startExporters(log, [throwing, dead], silent);
    cleanups.push(() => running.close());
    for (let i = 0; i < 20; i++) await log.append(action('s', `select ${i}`));
    expect(log.healthy).toBe(true);
    await until(() => running.status()[1]?.lastError !== null, 'a failure status');
    expect(running.status()[1]).toMatchObject({ name: 'dead', backlog: 20 });
  });
});

const RFC5424 = /^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[airlock@32473 [^\]]*\]) (.*)$/s;

describe('syslog exporter', () => {
  it('formats RFC 5424: PRI from facility and severity, SD with seq/node/hash, the record JSON as MSG', () => {
    const r = rec(7, { decision: 'deny' });
    const m = RFC5424.exec(formatSyslog(r, { facility: 'local0', appName: 'airlock', procId: '42' }));
    expect(m).not.toBeNull();
    // local0 (16) * 8 + warning (4)
    expect(m?.[1]).toBe(String(16 * 8 + 4));
    expect(m?.slice(2, 7)).toEqual([r.ts, 'n1', 'airlock', '42', 'action']);
    expect(m?.[7]).toBe(`[airlock@32473 seq="7" node="n1" hash="${r.hash}"]`);
    expect(JSON.parse(m?.[8] ?? '')).toEqual(r);
    const allow = RFC5424.exec(formatSyslog(rec(1), { facility: 'auth', appName: 'airlock' }));
    expect(allow?.[1]).toBe(String(4 * 8 + 6));
    expect(frameOctetCounted('é').toString()).toBe('2 é');
  });

  it('sends one datagram per event over UDP', async () => {
    const server = createSocket('udp4');
    const got: string[] = [];
    server.on('message', (m) => got.push(m.toString('utf8')));
    await new Promise<void>((res) => server.bind(0, '127.0.0.1', () => res()));
    cleanups.push(() => new Promise<void>((res) => server.close(() => res())));
    const x = new SyslogExporter({ name: 'siem', host: '127.0.0.1', port: server.address().port, protocol: 'udp', facility: 'auth', appName: 'airlock', logger: silent });
    cleanups.push(() => x.close());
    for (let i = 1; i <= 5; i++) x.offer(rec(i));
    await until(() => got.length === 5, '5 datagrams');
    expect(got.map((g) => (JSON.parse(RFC5424.exec(g)?.[8] ?? '{}') as { seq: number }).seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(x.status()).toMatchObject({ type: 'syslog', delivered: 5, dropped: 0 });
  });

  it('frames TCP with octet counting, in order, and queues across a late-starting receiver', async () => {
    // Find a free port, then start the receiver only after events were offered.
    const probe = createTcpServer();
    await new Promise<void>((res) => probe.listen(0, '127.0.0.1', () => res()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((res) => probe.close(() => res()));
    const x = new SyslogExporter({ name: 'siem', host: '127.0.0.1', port, protocol: 'tcp', facility: 'auth', appName: 'airlock', maxBackoffMs: 100, logger: silent });
    cleanups.push(() => x.close());
    const multi = 'line one\nline two ✓';
    for (let i = 1; i <= 10; i++) x.offer(rec(i, { action: { kind: 'sql', text: multi } }));
    await until(() => x.status().lastError !== null, 'a connect failure');
    expect(x.status().backlog).toBe(10);
    let buf = Buffer.alloc(0);
    const conns: Array<import('node:net').Socket> = [];
    const server = createTcpServer((s) => {
      conns.push(s);
      s.on('data', (c: Buffer) => (buf = Buffer.concat([buf, c])));
    });
    await new Promise<void>((res) => server.listen(port, '127.0.0.1', () => res()));
    cleanups.push(() => new Promise<void>((res) => {
      for (const c of conns) c.destroy();
      server.close(() => res());
    }));
    for (let i = 11; i <= 12; i++) x.offer(rec(i));
    const frames = (): string[] => {
      const out: string[] = [];
      let off = 0;
      for (;;) {
        const sp = buf.indexOf(0x20, off);
        if (sp < 0) break;
        const len = Number(buf.subarray(off, sp).toString('ascii'));
        if (buf.length < sp + 1 + len) break;
        out.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
        off = sp + 1 + len;
      }
      return out;
    };
    await until(() => frames().length === 12, '12 frames');
    const seqs = frames().map((f) => (JSON.parse(RFC5424.exec(f)?.[8] ?? '{}') as { seq: number }).seq);
    expect(seqs).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(frames()[0]).toContain(JSON.stringify(multi));
  });
});
