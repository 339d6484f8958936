/**
 * kill -9 of the daemon under concurrent writers and readers, on the MySQL wire and over HTTP
 * (issue 17): with effect-free SELECTs and GETs pipelined (forwarded while their records
 * sync), every statement or request whose effect reached the upstream, and every read whose
 * answer a client saw, has its record in the audit log; afterwards the chain verifies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { request } from 'node:http';
import mysql from 'mysql2/promise';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { startHttpUpstream, type HttpUpstream } from '../harness/http-upstream.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { airlockCommand, startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { run } from '../harness/clients.js';
import { readEvents } from '../../src/audit/index.js';

let maria: LocalMaria;
let web: HttpUpstream;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let doc: Record<string, unknown>;
let token = '';
const ports = { maria: 0, http: 0 };

beforeAll(async () => {
  issuer = await createTestIssuer();
  maria = await startLocalMaria({ password: 'kill9-Upstream-pw-17', setupSql: 'CREATE TABLE hits (client int, n int);' });
  web = await startHttpUpstream();
  ports.maria = await freePort();
  ports.http = await freePort();
  doc = {
    state_dir: join(maria.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      maria.connection('maria', ports.maria, { allow_groups: ['dev'] }),
      { name: 'web', protocol: 'http', listen: `127.0.0.1:${ports.http}`, upstream: { base_url: web.url }, credentials: { type: 'none' }, allow_groups: ['dev'] },
    ],
  };
  airlock = await startAirlock(doc);
  token = await issuer.token({ sub: 'alice', groups: ['dev'] }, { ttlSeconds: 600 });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await web?.close();
  await maria?.stop();
});

interface Recorded {
  texts: Set<string>;
  http: Set<string>;
}

async function recorded(): Promise<Recorded> {
  const texts = new Set<string>();
  const http = new Set<string>();
  for await (const r of readEvents(join(airlock.stateDir, 'audit'))) {
    const e = r.event as { type?: string; decision?: string; action?: { kind?: string; text?: string; method?: string; path?: string; query?: string } };
    if (e.type !== 'action' || e.decision !== 'allow' || e.action === undefined) continue;
    if (typeof e.action.text === 'string') texts.add(e.action.text);
    if (e.action.kind === 'http') http.add(`${e.action.method ?? ''} ${e.action.path ?? ''}?${e.action.query ?? ''}`);
  }
  return { texts, http };
}

/** One HTTP request on a keep-alive agent-less socket; resolves with the status once the whole answer arrived. */
function send(method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: ports.http, method, path, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('kill -9 with pipelined reads, MySQL and HTTP', () => {
  it('every write that reached MariaDB or the HTTP upstream, and every read a client saw, is in the audit log; verify passes', async () => {
    const writers = await Promise.all(Array.from({ length: 10 }, () => mysql.createConnection({ host: '127.0.0.1', port: ports.maria, user: 'alice', password: token, database: 'appdb', enableCleartextPlugin: true })));
    const readers = await Promise.all(Array.from({ length: 6 }, () => mysql.createConnection({ host: '127.0.0.1', port: ports.maria, user: 'alice', password: token, database: 'appdb', enableCleartextPlugin: true })));
    for (const c of [...writers, ...readers]) c.on('error', () => undefined);
    // The first SELECT of customers teaches the listener it is a base table, so later ones are pipelined.
    await readers[0]?.query('SELECT name FROM customers WHERE id = 1');
    const seenSql: string[] = [];
    const seenHttp: string[] = [];
    const writes = writers.map(async (c, ci) => {
      for (let n = 0; ; n++) {
        try {
          await c.query(`INSERT INTO hits VALUES (${ci}, ${n})`);
        } catch {
          return;
        }
      }
    });
    const reads = readers.map(async (c, ci) => {
      for (let n = 0; ; n++) {
        const text = `SELECT name, ${ci} AS reader, ${n} AS n FROM customers WHERE id = ${(n % 3) + 1}`;
        try {
          const [rows] = await c.query(text);
          if (Array.isArray(rows) && rows.length === 1) seenSql.push(text);
        } catch {
          return;
        }
      }
    });
    const gets = [0, 1, 2, 3].map(async (ci) => {
      for (let n = 0; ; n++) {
        try {
          const path = `/read?r=${ci}-${n}`;
          if ((await send('GET', path)) > 0) seenHttp.push(`GET /read?r=${ci}-${n}`);
        } catch {
          return;
        }
      }
    });
    const posts = [0, 1, 2, 3].map(async (ci) => {
      for (let n = 0; ; n++) {
        try {
          await send('POST', `/write?w=${ci}-${n}`);
        } catch {
          return;
        }
      }
    });
    await until(async () => Number(await maria.sql('SELECT COUNT(*) FROM hits', 'appdb')) >= 300 && web.received.length >= 200, '300 inserts and 200 HTTP requests upstream');
    airlock.process.kill('SIGKILL');
    await Promise.all([...writes, ...reads, ...gets, ...posts]);
    await Promise.all([...writers, ...readers].map((c) => c.end().catch(() => undefined)));

    const { texts, http } = await recorded();
    const ran = (await maria.sql('SELECT client, n FROM hits', 'appdb')).trim().split('\n').filter((l) => l !== '');
    expect(ran.length).toBeGreaterThanOrEqual(300);
    expect(ran.map((l) => l.split('\t')).filter(([c, n]) => !texts.has(`INSERT INTO hits VALUES (${c}, ${n})`))).toEqual([]);
    expect(seenSql.length).toBeGreaterThan(0);
    expect(seenSql.filter((t) => !texts.has(t))).toEqual([]);
    // Every POST the upstream received (its effect), and every GET whose answer the client got.
    const posted = web.received.filter((r) => r.method === 'POST').map((r) => `POST ${r.url}`);
    expect(posted.length).toBeGreaterThan(0);
    expect(posted.filter((p) => !http.has(p))).toEqual([]);
    expect(seenHttp.length).toBeGreaterThan(0);
    expect(seenHttp.filter((g) => !http.has(g))).toEqual([]);

    airlock = await startAirlock(doc);
    const { cmd, argv } = airlockCommand(['audit', 'verify', '--config', airlock.configFile]);
    const verify = await run(cmd, argv);
    expect(verify.stdout).toMatch(/^ok \d+ events/);
    expect(verify.code).toBe(0);
  }, 300_000);
});
