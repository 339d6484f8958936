/**
 * The MySQL/MariaDB gateway end to end (issue 7): the real airlock daemon in front of a real
 * MariaDB, driven by the stock `mariadb` client and the mysql2 driver. The token is the
 * password; the upstream password lives only in airlock's config.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { makeTestCerts, type TestCerts } from '../harness/tls.js';
import { freePort } from '../harness/ports.js';
import { run, type RunResult } from '../harness/clients.js';
import { PacketReader, framePacket } from '../../protocols/mysql/codec/framing.js';
import { Capability } from '../../protocols/mysql/codec/codes.js';
import { encodeHandshakeResponse41, encodeHandshakeV10 } from '../../protocols/mysql/codec/messages/handshake.js';
import { encodeOk } from '../../protocols/mysql/codec/messages/generic.js';
import { createServer, type Server } from 'node:net';

const UPSTREAM_PASSWORD = 'maria-upstream-Secret-7Qx';
const ED_PASSWORD = 'ed25519-Upstream-pässword';
let edPort = 0;
let evilPort = 0;
let evil: Server;
/** What the misbehaving upstream received after asking for a client file. */
const evilReceived: Buffer[] = [];

/**
 * A misbehaving upstream (not MariaDB: no real server sends this unasked): it greets, accepts
 * any login, and answers every COM_QUERY with a LOCAL INFILE request for a client file.
 */
function startEvilUpstream(path: string): Promise<number> {
  evil = createServer((s) => {
    s.on('error', () => undefined);
    const reader = new PacketReader({ maxPacketBytes: 1 << 20 });
    let stage = 0;
    s.write(framePacket(encodeHandshakeV10({ serverVersion: '8.0.0-evil', connectionId: 1, authPluginData: Buffer.alloc(20, 0x41), capabilities: 0xf7ff | (0x81bf << 16), characterSet: 45, statusFlags: 2, authPluginName: 'mysql_native_password' }), 0));
    s.on('data', (c: Buffer) => reader.push(c, (p) => {
      if (stage === 0) {
        stage = 1;
        s.write(framePacket(encodeOk({ statusFlags: 2 }, Capability.PROTOCOL_41), p.seq + 1));
      } else if (stage === 1 && p.payload[0] === 0x03) {
        stage = 2;
        s.write(framePacket(Buffer.concat([Buffer.from([0xfb]), Buffer.from(path)]), 1));
      } else if (stage === 2) {
        evilReceived.push(Buffer.from(p.payload));
        if (p.payload.length === 0) {
          stage = 1;
          s.write(framePacket(encodeOk({ statusFlags: 2, affectedRows: 1n }, Capability.PROTOCOL_41), p.seq + 1));
        }
      }
    }));
  });
  return new Promise((r) => evil.listen(0, '127.0.0.1', () => r((evil.address() as { port: number }).port)));
}
let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let certs: TestCerts;
let port = 0;
let tlsPort = 0;
let upstreamTlsPort = 0;
let token: string;
let fuzzToken: string;
const clientOutputs: string[] = [];

beforeAll(async () => {
  issuer = await createTestIssuer();
  certs = makeTestCerts();
  maria = await startLocalMaria({
    password: UPSTREAM_PASSWORD,
    tls: { cert: certs.cert, key: certs.key, ca: certs.ca },
    setupSql: `CREATE TABLE users (id int primary key, name varchar(50), ssn varchar(20));
      INSERT INTO users VALUES (1, 'ann', '123-45-6789'), (2, 'bob', '987-65-4321');
      CREATE TABLE big (id int primary key, v varchar(64));
      INSERT INTO big SELECT seq, concat('value-', seq) FROM seq_1_to_100000;
      INSTALL SONAME 'auth_ed25519';
      CREATE USER 'app_ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('${ED_PASSWORD}');
      GRANT SELECT ON appdb.* TO 'app_ed'@'%';`,
  });
  const secretFile = join(maria.dir, 'client-secret.txt');
  writeFileSync(secretFile, 'client-file-content-never-leaves');
  const evilUpstream = await startEvilUpstream(secretFile);
  evilPort = await freePort();
  port = await freePort();
  tlsPort = await freePort();
  upstreamTlsPort = await freePort();
  edPort = await freePort();
  const edPasswordFile = join(maria.dir, 'ed-password');
  writeFileSync(edPasswordFile, ED_PASSWORD, { mode: 0o600 });
  airlock = await startAirlock({
    state_dir: join(maria.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      maria.connection('maria', port, { allow_groups: ['dba', 'fuzz'] }),
      // Not loopback: tokens only over TLS.
      { ...maria.connection('maria-tls', tlsPort, { allow_groups: ['dba'] }), listen: `0.0.0.0:${tlsPort}`, tls: { cert: certs.cert, key: certs.key } },
      // The upstream leg over TLS, its certificate checked against the CA and the host name.
      { ...maria.connection('evil', evilPort, { allow_groups: ['dba'] }), upstream: { host: '127.0.0.1', port: evilUpstream } },
      // MariaDB's own ed25519 authentication for the upstream user.
      maria.connection('maria-ed25519', edPort, { allow_groups: ['dba'], credentials: { type: 'static', username: 'app_ed', password: `\${file:${edPasswordFile}}` } }),
      maria.connection('maria-upstream-tls', upstreamTlsPort, { allow_groups: ['dba'], upstream: { host: 'localhost', port: maria.port, database: 'appdb', tls: 'verify-full', ca: certs.ca } }),
    ],
    // LOAD DATA LOCAL is admitted on the misbehaving upstream only, to show the file check holds there.
    rules: [{ name: 'evil-loads', when: { connections: ['evil'], statements: ['load_data_local'] }, effect: 'allow' }],
  });
  token = await issuer.token({ sub: 'alice', groups: ['dba'] });
  fuzzToken = await issuer.token({ sub: 'mallory', groups: ['fuzz'] });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  evil?.close();
  await maria?.stop();
});

async function mariadb(args: string[], opts: { input?: string; token?: string; port?: number } = {}): Promise<RunResult> {
  const r = await run('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(opts.port ?? port), '-u', 'alice', '--connect-timeout=10', ...args], {
    env: { MYSQL_PWD: opts.token ?? token },
    ...(opts.input === undefined ? {} : { input: opts.input }),
  });
  clientOutputs.push(r.stdout, r.stderr);
  return r;
}

const driver = (extra: Partial<mysql.ConnectionOptions> = {}): Promise<mysql.Connection> =>
  mysql.createConnection({ host: '127.0.0.1', port, user: 'alice', password: token, database: 'appdb', enableCleartextPlugin: true, ...extra });

describe('the mariadb client', () => {
  it('runs -e statements with the token as the password', async () => {
    const r = await mariadb(['-N', '-B', 'appdb', '-e', 'SELECT name FROM users ORDER BY id; SELECT DATABASE()']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ann\nbob\nappdb\n');
  });

  it('takes a 2.5 KB token (a long OIDC JWT) as the password', async () => {
    const long = await issuer.token({ sub: 'alice', groups: ['dba'], pad: 'p'.repeat(1800) });
    expect(long.length).toBeGreaterThan(2500);
    const r = await mariadb(['-N', '-B', '-e', "SELECT 'long-token'"], { token: long });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('long-token\n');
  });

  it('runs a batch from stdin and a sourced file', async () => {
    const file = join(maria.dir, 'batch.sql');
    writeFileSync(file, "SELECT 'from-file' AS f;\n");
    const r = await mariadb(['-N', '-B', 'appdb'], { input: `SELECT 1;\nSELECT count(*) FROM users;\nsource ${file}\nUSE appdb;\nSELECT id FROM users WHERE id = 2;\n` });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('1\n2\nfrom-file\n2\n');
  });

  it('streams a 100 000-row result', async () => {
    const r = await mariadb(['-N', '-B', 'appdb', '-e', 'SELECT id, v FROM big ORDER BY id']);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(100_000);
    expect(lines[99_999]).toBe('100000\tvalue-100000');
  });

  it('never lets the server read a client file (LOAD DATA LOCAL INFILE) unless a rule names load_data_local', async () => {
    const file = join(maria.dir, 'rows.csv');
    writeFileSync(file, '5,eve,555-55-5555\n');
    const r = await mariadb(['--local-infile=1', 'appdb', '-e', `LOAD DATA LOCAL INFILE '${file}' INTO TABLE users FIELDS TERMINATED BY ','`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR 1142 \(42000\).*denied by rule \(load_data_local\)/);
    expect((await maria.sql('SELECT COUNT(*) FROM users', 'appdb')).trim()).toBe('2');
  });

  it('refuses a LOCAL INFILE request that an upstream sends unasked; no file byte leaves', async () => {
    const r = await mariadb(['--local-infile=1', '-e', 'SELECT 1'], { port: evilPort });
    expect(r.stderr).toMatch(/ERROR 3948 \(42000\).*LOAD DATA LOCAL INFILE is refused/);
    expect(evilReceived.map((b) => b.toString())).toEqual(['']);
    const c = await mysql.createConnection({ host: '127.0.0.1', port: evilPort, user: 'alice', password: token, enableCleartextPlugin: true, infileStreamFactory: () => { throw new Error('the client was asked for a file'); } } as mysql.ConnectionOptions);
    try {
      await expect(c.query('SELECT 2')).rejects.toMatchObject({ errno: 3948 });
      // The session goes on.
      await expect(c.query('SELECT 3')).rejects.toMatchObject({ errno: 3948 });
    } finally {
      c.destroy();
    }
    expect(evilReceived.every((b) => b.length === 0)).toBe(true);
  });

  it('an admitted LOAD DATA LOCAL: an upstream asking for another file than the statement names gets none of it', async () => {
    const innocent = join(maria.dir, 'innocent.csv');
    writeFileSync(innocent, '1,x\n');
    evilReceived.length = 0;
    const r = await mariadb(['--local-infile=1', '-e', `LOAD DATA LOCAL INFILE '${innocent}' INTO TABLE t`], { port: evilPort });
    expect(r.stderr).toMatch(/ERROR 3948 \(42000\).*refused: the server asked for a file other than the one the statement names/);
    expect(evilReceived.map((b) => b.toString())).toEqual(['']);
  });

  it('refuses a bad token with 1045 and never echoes it', async () => {
    const bad = `${token.slice(0, -6)}AAAAAA`;
    const r = await mariadb(['-e', 'SELECT 1'], { token: bad });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR 1045 \(28000\)/);
    expect(r.stderr).not.toContain(bad);
    const none = await mariadb(['-e', 'SELECT 1'], { token: 'not-a-jwt' });
    expect(none.stderr).toMatch(/ERROR 1045 \(28000\)/);
  });

  it('off loopback takes the token only over TLS, verified against the listener certificate', async () => {
    const plain = await mariadb(['--skip-ssl', '-e', 'SELECT 1'], { port: tlsPort });
    expect(plain.stderr).toMatch(/ERROR 1045 \(28000\).*only over TLS/);
    const verified = await mariadb(['-N', '-B', `--ssl-ca=${certs.ca}`, '--ssl-verify-server-cert', '-e', "SELECT 'tls-ok'"], { port: tlsPort });
    expect(verified.stderr).toBe('');
    expect(verified.stdout).toBe('tls-ok\n');
  });
});

describe('the upstream leg', () => {
  it("logs in as a user of MariaDB's ed25519 plugin", async () => {
    const r = await mariadb(['-N', '-B', '-e', 'SELECT CURRENT_USER(), COUNT(*) FROM users'], { port: edPort });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^app_ed@%\t2\n$/);
  });

  it('logs in over TLS with verify-full', async () => {
    const r = await mariadb(['-N', '-B', '-e', "SHOW SESSION STATUS LIKE 'Ssl_version'"], { port: upstreamTlsPort });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Ssl_version\tTLSv1\.[23]\n$/);
    const plain = await mariadb(['-N', '-B', '-e', "SHOW SESSION STATUS LIKE 'Ssl_version'"]);
    expect(plain.stdout).toBe('Ssl_version\t\n');
  });
});

describe('the mysql2 driver', () => {
  it('query, execute (prepared), multiple statements and results', async () => {
    const c = await driver({ multipleStatements: true });
    try {
      const [rows] = await c.query('SELECT id, name FROM users ORDER BY id');
      expect(rows).toEqual([{ id: 1, name: 'ann' }, { id: 2, name: 'bob' }]);
      const [one] = await c.execute('SELECT name, ssn FROM users WHERE id = ?', [2]);
      expect(one).toEqual([{ name: 'bob', ssn: '987-65-4321' }]);
      const [again] = await c.execute('SELECT name, ssn FROM users WHERE id = ?', [1]);
      expect(again).toEqual([{ name: 'ann', ssn: '123-45-6789' }]);
      const [multi] = await c.query('SELECT 1 AS a; SELECT 2 AS b; UPDATE users SET name = name WHERE id = 1');
      expect((multi as unknown[]).length).toBe(3);
      const [ins] = await c.execute('INSERT INTO users VALUES (?, ?, ?)', [3, 'cy', '111-22-3333']);
      expect((ins as mysql.ResultSetHeader).affectedRows).toBe(1);
      await c.query('DELETE FROM users WHERE id = 3');
      await c.ping();
      const [big] = await c.execute('SELECT id, v FROM big WHERE id > ?', [0]);
      expect((big as unknown[]).length).toBe(100_000);
    } finally {
      await c.end();
    }
  });

  it('carries packets over 16 MB both ways (split and joined)', async () => {
    const c = await driver();
    try {
      const big = 'ab'.repeat(9 * 1024 * 1024); // 18 MB: two physical packets each way
      const [rows] = await c.execute('SELECT LENGTH(?) AS n, ? AS echo', [big, big]);
      const row = (rows as Array<{ n: number; echo: string }>)[0];
      expect(row?.n).toBe(big.length);
      expect(row?.echo === big).toBe(true);
      const [text] = await c.query("SELECT REPEAT('xy', 9 * 1024 * 1024) AS r, 'after' AS tail");
      const t = (text as Array<{ r: string; tail: string }>)[0];
      expect(t?.r.length).toBe(18 * 1024 * 1024);
      expect(t?.tail).toBe('after');
    } finally {
      await c.end();
    }
  });

  it('refuses COM_CHANGE_USER and keeps the session', async () => {
    const c = await driver();
    try {
      await expect(c.changeUser({ user: 'root' })).rejects.toThrow(/COM_CHANGE_USER is refused/);
    } finally {
      c.destroy();
    }
    const r = await mariadb(['-N', '-B', '-e', 'SELECT CURRENT_USER()']);
    expect(r.stdout).toMatch(/^app@/);
  });

  it('maps KILL QUERY of airlock connection ids to the upstream thread', async () => {
    const victim = await driver();
    const killer = await driver();
    try {
      const slow = victim.query('SELECT SLEEP(20) AS s').then(() => 'finished', (e: Error) => e.message);
      await new Promise((r) => setTimeout(r, 500));
      await killer.query(`KILL QUERY ${victim.threadId}`);
      expect(await slow).toMatch(/interrupted/);
      const [alive] = await victim.query('SELECT 1 AS alive');
      expect(alive).toEqual([{ alive: 1 }]);
      await expect(killer.query('KILL QUERY 1')).rejects.toThrow(/Unknown thread id/);
    } finally {
      victim.destroy();
      await killer.end();
    }
  });
});

/** Logs in on a raw socket as the fuzz identity (loopback: the token goes in the first response). */
function rawLogin(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let stage = 0;
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      if (stage === 0) {
        stage = 1;
        const caps = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.MULTI_RESULTS;
        s.write(framePacket(encodeHandshakeResponse41({ capabilities: caps, maxPacketSize: 1 << 24, characterSet: 45, username: 'mallory', authResponse: Buffer.from(`${fuzzToken}\0`), database: null, authPluginName: 'mysql_clear_password', attributes: [] }), 1));
      } else if (stage === 1) {
        stage = 2;
        if (d[4] !== 0x00) reject(new Error(`login failed: ${d.toString('latin1')}`));
        else resolve(s);
      }
    });
  });
}

function closed(s: Socket, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve();
    const t = setTimeout(() => {
      s.destroy();
      resolve();
    }, ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

describe('hostile bytes', () => {
  it('survives a connect-and-close probe (nc -z; bash /dev/tcp where nc is not installed)', async () => {
    const r = await run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}; exec 3>&-`]);
    expect(r.code).toBe(0);
    const ok = await mariadb(['-N', '-B', '-e', 'SELECT 42']);
    expect(ok.stdout).toBe('42\n');
  });

  it('thousands of malformed packets in the handshake and the command phase; a good client keeps working', async () => {
    let seed = 1;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const garbage = (): Buffer => {
      const kind = rand();
      const body = randomBytes(Math.floor(rand() * 64));
      if (kind < 0.3) return body; // not even framed
      if (kind < 0.5) return Buffer.concat([Buffer.from([0xff, 0xff, 0xff, Math.floor(rand() * 256)]), body]); // huge length
      // A framed packet with a random or plausible command byte and sequence id.
      const cmd = rand() < 0.5 ? [0x03, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1c, 0x02, 0x04, 0x0c, 0x11, 0x1f][Math.floor(rand() * 12)] ?? 0 : Math.floor(rand() * 256);
      return framePacket(Buffer.concat([Buffer.from([cmd]), body]), rand() < 0.8 ? 0 : Math.floor(rand() * 256));
    };
    let packets = 0;
    const good = await driver();
    try {
      for (let round = 0; round < 20; round++) {
        const sockets: Socket[] = [];
        // Handshake phase: garbage instead of a HandshakeResponse41.
        for (let i = 0; i < 10; i++) {
          const s = connect(port, '127.0.0.1');
          s.on('error', () => undefined);
          s.once('data', () => {
            for (let k = 0; k < 10; k++) s.write(garbage());
            packets += 10;
            s.end();
          });
          sockets.push(s);
        }
        // Command phase: a logged-in session fed garbage.
        for (let i = 0; i < 5; i++) {
          const s = await rawLogin();
          s.on('error', () => undefined);
          for (let k = 0; k < 20; k++) s.write(garbage());
          packets += 20;
          s.end();
          sockets.push(s);
        }
        await Promise.all(sockets.map((s) => closed(s, 2000)));
        const [rows] = await good.query('SELECT COUNT(*) AS n FROM users');
        expect(rows).toEqual([{ n: 2 }]);
      }
    } finally {
      await good.end();
    }
    expect(packets).toBeGreaterThanOrEqual(4000);
    const r = await mariadb(['-N', '-B', '-e', 'SELECT 7']);
    expect(r.stdout).toBe('7\n');
    expect(airlock.process.exitCode).toBeNull();
    // Refused, never crashed: no internal error was logged.
    expect(airlock.logs().filter((l) => typeof l.level === 'number' && l.level >= 50)).toEqual([]);
  }, 120_000);
});

describe('secrets', () => {
  it('never shows the upstream password or a token in any output', () => {
    const everything = [airlock.output(), ...clientOutputs].join('\n');
    expect(everything).not.toContain(UPSTREAM_PASSWORD);
    expect(everything).not.toContain(ED_PASSWORD);
    expect(everything).not.toContain('client-file-content-never-leaves');
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(fuzzToken);
  });
});
