// connectUpstream / sendCancel against real PostgreSQL servers started by the harness,
// one per pg_hba method, on random loopback ports.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { freePort } from '../harness/ports.js';
import { connectUpstream, sendCancel, type UpstreamConnection, type UpstreamOptions } from '../../protocols/postgres/upstream.js';
import { FrameReader } from '../../protocols/postgres/codec/framing.js';
import { decodeBackend, type BackendMessage } from '../../protocols/postgres/codec/backend.js';
import { encodeQuery, encodeTerminate } from '../../protocols/postgres/codec/frontend.js';
import { AirlockError } from '../../src/util/errors.js';
import { Secret } from '../../src/secrets/index.js';

const SERVER_START_MS = 120_000;

function options(pg: PgServer, over: Partial<UpstreamOptions> = {}): UpstreamOptions {
  return {
    host: pg.host, port: pg.port, database: 'postgres', tls: 'disable',
    username: pg.superuser, password: new Secret(pg.superPassword), maxMessageBytes: 1 << 20, connectTimeoutMs: 10_000, ...over,
  };
}

/** Sends a simple query on a connected upstream and collects the answer up to ReadyForQuery. */
function query(conn: UpstreamConnection, sql: string): Promise<BackendMessage[]> {
  return new Promise((resolve, reject) => {
    const reader = new FrameReader({ maxMessageBytes: 1 << 20, maxStartupBytes: 0, startup: false });
    const out: BackendMessage[] = [];
    const onData = (chunk: Buffer): void => {
      reader.push(chunk, (f) => {
        const m = decodeBackend(f);
        // DataRow cells are views of the socket chunk; copy them for the test's later reads.
        out.push(m.type === 'DataRow' ? { type: 'DataRow', cells: m.cells.map((c) => (c === null ? null : Buffer.from(c))) } : m);
        if (m.type === 'ReadyForQuery') {
          conn.socket.off('data', onData);
          conn.socket.pause();
          resolve(out);
        }
      });
    };
    conn.socket.once('error', reject);
    conn.socket.on('data', onData);
    if (conn.leftover.length > 0) onData(conn.leftover);
    conn.socket.write(encodeQuery(sql));
    conn.socket.resume();
  });
}

function rows(messages: BackendMessage[]): (string | null)[][] {
  return messages.flatMap((m) => (m.type === 'DataRow' ? [m.cells.map((c) => (c === null ? null : c.toString('utf8')))] : []));
}

async function close(conn: UpstreamConnection): Promise<void> {
  await new Promise<void>((resolve) => conn.socket.end(encodeTerminate(), () => resolve()));
  conn.socket.destroy();
}

async function expectAirlockError(p: Promise<unknown>, code: string): Promise<AirlockError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(AirlockError);
  expect((e as AirlockError).code).toBe(code);
  return e as AirlockError;
}

/** Everything an error could leak through: message, stack, JSON and its cause chain. */
function errorText(e: unknown): string {
  const parts: string[] = [];
  for (let cur: unknown = e, depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    if (cur instanceof Error) {
      parts.push(cur.message, cur.stack ?? '', JSON.stringify(cur), String(cur));
      cur = cur.cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join('\n');
}

interface Certs { dir: string; ca: string; cert: string; key: string }

/** A throwaway CA and a server certificate for localhost / 127.0.0.1. */
function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-pgtls-'));
  const f = (n: string): string => join(dir, n);
  const ossl = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ossl(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=airlock test CA']);
  ossl(['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ossl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('ext.cnf')]);
  return { dir, ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}

describe('connectUpstream with scram-sha-256 (the default)', () => {
  let pg: PgServer;
  beforeAll(async () => {
    pg = await startPostgres();
  }, SERVER_START_MS);
  afterAll(async () => pg?.stop());

  it('authenticates, reports parameters and the backend key, and then carries queries', async () => {
    const conn = await connectUpstream(options(pg, { startupParameters: { application_name: 'airlock-test', user: 'evil', database: 'nope' } }));
    try {
      expect(conn.serverVersion).toMatch(/^\d+/);
      expect(conn.parameters.get('server_version')).toBe(conn.serverVersion);
      expect(conn.parameters.get('application_name')).toBe('airlock-test');
      expect(conn.parameters.get('client_encoding')).toBe('UTF8');
      expect(conn.backendKey.pid).toBeGreaterThan(0);
      expect(conn.leftover.length).toBe(0);
      expect(conn.socket.isPaused()).toBe(true);
      const answer = await query(conn, "select 1 as one, current_user, current_database(), current_setting('application_name'), null::text");
      expect(answer.map((m) => m.type)).toEqual(['RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery']);
      expect(rows(answer)).toEqual([['1', pg.superuser, 'postgres', 'airlock-test', null]]);
      const rd = answer[0];
      expect(rd?.type === 'RowDescription' && rd.fields.map((f) => f.name)).toEqual(['one', 'current_user', 'current_database', 'current_setting', 'text']);
      const again = await query(conn, 'select pg_backend_pid()');
      expect(rows(again)).toEqual([[String(conn.backendKey.pid)]]);
    } finally {
      await close(conn);
    }
  });

  it('reports a wrong password as AIRLOCK_UPSTREAM_AUTH without the password in it', async () => {
    const wrong = 'Wr0ng-pa55word-that-must-not-leak';
    const e = await expectAirlockError(connectUpstream(options(pg, { password: new Secret(wrong) })), 'AIRLOCK_UPSTREAM_AUTH');
    expect(e.message).toContain('28P01');
    expect(errorText(e)).not.toContain(wrong);
    expect(errorText(e)).not.toContain(pg.superPassword);
  });

  it('reports a missing database with its SQLSTATE', async () => {
    const e = await expectAirlockError(connectUpstream(options(pg, { database: 'no_such_db' })), 'AIRLOCK_UPSTREAM_UNAVAILABLE');
    expect(e.message).toContain('3D000');
    expect(errorText(e)).not.toContain(pg.superPassword);
  });

  it('refuses tls: require when the server offers no TLS', async () => {
    const e = await expectAirlockError(connectUpstream(options(pg, { tls: 'require' })), 'AIRLOCK_UPSTREAM_UNAVAILABLE');
    expect(e.message).toContain('TLS');
  });

  it('reports a port with nothing listening as AIRLOCK_UPSTREAM_UNAVAILABLE', async () => {
    const port = await freePort();
    const e = await expectAirlockError(connectUpstream(options(pg, { port })), 'AIRLOCK_UPSTREAM_UNAVAILABLE');
    expect(errorText(e)).not.toContain(pg.superPassword);
  });

  it('sendCancel cancels a running pg_sleep(30)', async () => {
    const conn = await connectUpstream(options(pg));
    try {
      const running = query(conn, 'select pg_sleep(30)');
      // Wait until the backend is really inside the sleep, so the cancel cannot arrive early.
      for (let i = 0; i < 200; i++) {
        const state = await pg.psql(`select wait_event from pg_stat_activity where pid = ${conn.backendKey.pid}`);
        if (state === 'PgSleep') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await sendCancel({ host: pg.host, port: pg.port, tls: 'disable' }, conn.backendKey);
      const answer = await running;
      const err = answer.find((m) => m.type === 'ErrorResponse');
      expect(err?.type === 'ErrorResponse' && err.fields.code).toBe('57014');
    } finally {
      await close(conn);
    }
  }, 20_000);
});

describe('connectUpstream with md5', () => {
  let pg: PgServer;
  beforeAll(async () => {
    pg = await startPostgres({ hba: 'md5' });
    await pg.psql("set password_encryption = 'md5'; create role md5user login password 'md5-pass'");
  }, SERVER_START_MS);
  afterAll(async () => pg?.stop());

  it('authenticates a role whose password is stored as MD5', async () => {
    expect(await pg.psql("select left(rolpassword, 3) from pg_authid where rolname = 'md5user'")).toBe('md5');
    const conn = await connectUpstream(options(pg, { username: 'md5user', password: new Secret('md5-pass') }));
    try {
      expect(rows(await query(conn, 'select current_user'))).toEqual([['md5user']]);
    } finally {
      await close(conn);
    }
  });

  it('rejects a wrong MD5 password without leaking it', async () => {
    const e = await expectAirlockError(connectUpstream(options(pg, { username: 'md5user', password: new Secret('not-the-md5-pass') })), 'AIRLOCK_UPSTREAM_AUTH');
    expect(errorText(e)).not.toContain('not-the-md5-pass');
  });
});

describe('connectUpstream with cleartext password over TLS', () => {
  let pg: PgServer;
  let certs: Certs;
  let otherCa: Certs;
  beforeAll(async () => {
    certs = makeCerts();
    otherCa = makeCerts();
    pg = await startPostgres({ hba: 'password', ssl: { cert: certs.cert, key: certs.key } });
  }, SERVER_START_MS);
  afterAll(async () => {
    await pg?.stop();
    for (const c of [certs, otherCa]) if (c !== undefined) rmSync(c.dir, { recursive: true, force: true });
  });

  it('tls: require encrypts without verifying the certificate', async () => {
    const conn = await connectUpstream(options(pg, { tls: 'require' }));
    try {
      expect('encrypted' in conn.socket && conn.socket.encrypted).toBe(true);
      expect(rows(await query(conn, 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'))).toEqual([['t']]);
    } finally {
      await close(conn);
    }
  });

  it('tls: verify-full accepts the right CA, by IP and by name', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const conn = await connectUpstream(options(pg, { host, tls: 'verify-full', ca: certs.ca }));
      expect(rows(await query(conn, 'select 1'))).toEqual([['1']]);
      await close(conn);
    }
  });

  it('tls: verify-full refuses a certificate from another CA', async () => {
    await expectAirlockError(connectUpstream(options(pg, { tls: 'verify-full', ca: otherCa.ca })), 'AIRLOCK_UPSTREAM_UNAVAILABLE');
  });

  it('tls: disable sends the cleartext password on a plain connection', async () => {
    const conn = await connectUpstream(options(pg, { tls: 'disable' }));
    try {
      expect(rows(await query(conn, 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'))).toEqual([['f']]);
    } finally {
      await close(conn);
    }
  });

  it('sendCancel works over TLS', async () => {
    const conn = await connectUpstream(options(pg, { tls: 'require' }));
    try {
      const running = query(conn, 'select pg_sleep(30)');
      for (let i = 0; i < 200; i++) {
        if ((await pg.psql(`select wait_event from pg_stat_activity where pid = ${conn.backendKey.pid}`)) === 'PgSleep') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await sendCancel({ host: pg.host, port: pg.port, tls: 'require' }, conn.backendKey);
      const err = (await running).find((m) => m.type === 'ErrorResponse');
      expect(err?.type === 'ErrorResponse' && err.fields.code).toBe('57014');
    } finally {
      await close(conn);
    }
  }, 20_000);
});

describe('connectUpstream with trust', () => {
  let pg: PgServer;
  beforeAll(async () => {
    pg = await startPostgres({ hba: 'trust' });
  }, SERVER_START_MS);
  afterAll(async () => pg?.stop());

  it('needs no password exchange', async () => {
    const conn = await connectUpstream(options(pg, { password: new Secret('ignored') }));
    try {
      expect(rows(await query(conn, 'select current_user'))).toEqual([[pg.superuser]]);
    } finally {
      await close(conn);
    }
  });
});
