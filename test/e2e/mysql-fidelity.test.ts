/**
 * Driver fidelity on the MySQL wire (issue 26): what mysql2 and MariaDB's own `mariadb`
 * connector get through airlock is what they get from the server directly — ordinary SQL
 * that airlock used to refuse as unreadable, non-ASCII text (utf8mb4 after SET NAMES, koi8r
 * and cp1251 connections), syntax errors as ER_PARSE_ERROR, MariaDB's extended column
 * metadata (a JSON column reaches the driver as JSON), reading a charset into a variable in a
 * multi-statement text — while text airlock cannot read is still refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import mysql from 'mysql2/promise';
import * as mariadbConnector from 'mariadb';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { makeTestCerts, type TestCerts } from '../harness/tls.js';

const UPSTREAM_PASSWORD = 'fidelity-Upstream-pw-26';
let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let certs: TestCerts;
let port = 0;
let token = '';
let maskedToken = '';

beforeAll(async () => {
  issuer = await createTestIssuer();
  certs = makeTestCerts();
  maria = await startLocalMaria({
    password: UPSTREAM_PASSWORD,
    setupSql: `CREATE TABLE docs (id int primary key, doc json, body varchar(100) CHARACTER SET utf8mb4);
      INSERT INTO docs VALUES (1, '{"k": [1, 2], "s": "x"}', 'plain');
      CREATE TABLE \`документы\` (id int primary key, body varchar(100) CHARACTER SET utf8mb4);
      INSERT INTO \`документы\` VALUES (1, 'секрет');
      CREATE TABLE notes (id int primary key, body varchar(100) CHARACTER SET utf8mb4);
      CREATE TABLE dumped (id int primary key, v varchar(100) CHARACTER SET utf8mb4);
      INSERT INTO dumped VALUES (1, 'café – ёлка'), (2, 'plain');`,
  });
  // DROP USER IF EXISTS needs the CREATE USER privilege.
  await maria.sql("GRANT CREATE USER ON *.* TO 'app'@'%'");
  // A view whose function assigns a user variable: a SELECT that changes @s where the text does not show it.
  await maria.sql("DELIMITER //\nCREATE FUNCTION set_s() RETURNS int DETERMINISTIC BEGIN SET @s = 'gbk'; RETURN 1; END//\nDELIMITER ;\nCREATE VIEW sets_s AS SELECT set_s() AS x;", 'appdb');
  await maria.sql("CREATE DATABASE `секрет`; CREATE TABLE `секрет`.t (v varchar(20)); INSERT INTO `секрет`.t VALUES ('hidden'); GRANT ALL ON `секрет`.* TO 'app'@'%'");
  port = await freePort();
  airlock = await startAirlock({
    state_dir: join(maria.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    masking: { hash_key: 'fidelity-hash-key' },
    connections: [{ ...maria.connection('maria', port, { allow_groups: ['dev', 'masked'] }), tls: { cert: certs.cert, key: certs.key } }],
    rules: [
      { name: 'no-secret-docs', when: { groups: ['dev'], tables: ['appdb.документы'] }, effect: 'deny', reason: 'those documents are sealed' },
      { name: 'sealed-schema', when: { groups: ['dev'], tables: ['секрет.t'] }, effect: 'deny', reason: 'that schema is sealed' },
      { name: 'mask-bodies', when: { groups: ['masked'] }, effect: 'mask', columns: ['appdb.docs.body'], method: 'redact' },
    ],
  });
  token = await issuer.token({ sub: 'dana', groups: ['dev'] });
  maskedToken = await issuer.token({ sub: 'mia', groups: ['masked'] });
  // airlock learns the upstream's MariaDB capabilities at a first login (as it learns its version).
  await (await viaAirlock()).end();
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
});

const viaAirlock = (extra: Partial<mysql.ConnectionOptions> = {}): Promise<mysql.Connection> =>
  mysql.createConnection({ host: '127.0.0.1', port, user: 'dana', password: token, database: 'appdb', enableCleartextPlugin: true, ...extra });
const direct = (extra: Partial<mysql.ConnectionOptions> = {}): Promise<mysql.Connection> =>
  mysql.createConnection({ host: '127.0.0.1', port: maria.port, user: 'app', password: UPSTREAM_PASSWORD, database: 'appdb', ...extra });
const connectorVia = (): Promise<mariadbConnector.Connection> =>
  mariadbConnector.createConnection({ host: '127.0.0.1', port, user: 'dana', password: token, database: 'appdb', ssl: { ca: readFileSync(certs.ca, 'utf8') }, multipleStatements: true });
const connectorDirect = (): Promise<mariadbConnector.Connection> =>
  mariadbConnector.createConnection({ host: '127.0.0.1', port: maria.port, user: 'app', password: UPSTREAM_PASSWORD, database: 'appdb', multipleStatements: true });

/** Runs `f` on a connection through airlock and on a direct one; returns both results. */
async function both<T>(f: (c: mysql.Connection) => Promise<T>, extra: Partial<mysql.ConnectionOptions> = {}): Promise<{ via: T; direct: T }> {
  const a = await viaAirlock(extra);
  const d = await direct(extra);
  try {
    return { via: await f(a), direct: await f(d) };
  } finally {
    await a.end();
    await d.end();
  }
}

/** Runs a client with raw bytes on its standard input (text in a client character set other than UTF-8). */
function runWithInput(cmd: string, args: string[], input: Buffer, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('latin1')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('latin1')));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // A client that exits before reading all its input must not become an unhandled EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

const rowsOf = async (c: mysql.Connection, sql: string, values?: unknown[]): Promise<unknown> => (await c.query(sql, values))[0];

describe('ordinary SQL that airlock used to refuse as unreadable', () => {
  it('runs through mysql2 as it does directly', async () => {
    const texts = [
      "SELECT X'68656c6c6f' AS result",
      "SELECT _binary X'0001feff' AS b",
      "SELECT b'0101' AS bits, x'41' AS a",
      'SELECT "" AS e',
      'SET sql_mode=""',
      "DROP USER IF EXISTS 'nobody-26'@'%'",
      'DROP PROCEDURE IF EXISTS no_such_proc',
      'CREATE TEMPORARY TABLE tmp26 (l long, n int8)',
    ];
    for (const sql of texts) {
      const r = await both((c) => rowsOf(c, sql));
      expect(r.via, sql).toEqual(r.direct);
    }
  });

  it('runs through the mariadb connector as it does directly (text and binary protocol)', async () => {
    const texts = ["SELECT X'68656c6c6f' AS result", "SELECT _binary X'0001feff' AS b", 'SELECT "" AS e', 'SET sql_mode=""', "DROP USER IF EXISTS 'nobody-26'@'%'", 'DROP PROCEDURE IF EXISTS no_such_proc'];
    const out: string[][] = [];
    const text = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
    for (const open of [connectorVia, connectorDirect]) {
      const c = await open();
      try {
        const one: string[] = [];
        for (const sql of texts) one.push(text(await c.query(sql)));
        one.push(text(await c.query('SELECT ? AS b', [Buffer.from([0, 0x27, 0xff])])));
        one.push(text(await c.execute('SET character_set_results = ?', ['utf8mb4'])));
        out.push(one);
      } finally {
        await c.end();
      }
    }
    expect(out[0]).toEqual(out[1]);
  });

  it('passes a Buffer parameter of a text query (mysql2 sends it as X\'…\')', async () => {
    const bytes = Buffer.from([0x00, 0x01, 0x27, 0x5c, 0xfe, 0xff]);
    const r = await both((c) => rowsOf(c, 'SELECT ? AS b, HEX(?) AS h', [bytes, bytes]));
    expect(r.via).toEqual(r.direct);
    expect(r.via).toEqual([{ b: bytes, h: '0001275CFEFF' }]);
  });

  it('prepares SET character_set_results = ?', async () => {
    const r = await both(async (c) => {
      await c.execute('SET character_set_results = ?', ['utf8mb4']);
      return rowsOf(c, 'SELECT @@character_set_results AS cs');
    });
    expect(r.via).toEqual([{ cs: 'utf8mb4' }]);
    expect(r.via).toEqual(r.direct);
  });

  it('reads a charset into a variable in a multi-statement text (not a charset change)', async () => {
    const r = await both((c) => rowsOf(c, 'SET @a = @@character_set_client; SELECT 1 AS one, @a AS cs'), { multipleStatements: true });
    expect(r.via).toEqual(r.direct);
  });
});

describe('non-ASCII text', () => {
  it('reads utf8mb4 after SET NAMES, and after a refused statement', async () => {
    const c = await viaAirlock();
    try {
      await c.query('SET NAMES utf8mb4');
      expect(await rowsOf(c, "SELECT 'é' AS e")).toEqual([{ e: 'é' }]);
      // A statement airlock cannot read is refused, and changes nothing about how later text reads.
      await expect(c.query('OPTIMIZE TABLE notes')).rejects.toMatchObject({ errno: 1142 });
      expect(await rowsOf(c, "SELECT 'é' AS e, 'Привет' AS w")).toEqual([{ e: 'é', w: 'Привет' }]);
    } finally {
      await c.end();
    }
  });

  for (const charset of ['KOI8R_GENERAL_CI', 'CP1251_GENERAL_CI']) {
    it(`reads a ${charset} connection's Cyrillic text exactly, policy included`, async () => {
      const r = await both(async (c) => {
        await c.query('DELETE FROM notes');
        await c.query("INSERT INTO notes VALUES (1, 'Съешь же ещё этих мягких французских булок')");
        return rowsOf(c, "SELECT body, 'ёлка' AS tree FROM notes WHERE body LIKE 'Съешь%'");
      }, { charset });
      expect(r.via).toEqual([{ body: 'Съешь же ещё этих мягких французских булок', tree: 'ёлка' }]);
      expect(r.via).toEqual(r.direct);
      // The table's name is read as the server reads it: the rule that names it applies.
      const c = await viaAirlock({ charset });
      try {
        await expect(c.query('SELECT * FROM документы')).rejects.toMatchObject({ errno: 1142, message: expect.stringContaining('no-secret-docs') });
      } finally {
        await c.end();
      }
    });
  }

  it("reads COM_INIT_DB's database name in the connection's character set (mariadb CLI `use`, koi8r)", async () => {
    // The CLI's `use` sends COM_INIT_DB; the name's bytes are koi8r, the following table is in that database.
    const input = Buffer.concat([Buffer.from('use '), Buffer.from([0xd3, 0xc5, 0xcb, 0xd2, 0xc5, 0xd4]), Buffer.from('\nSELECT v FROM t;\n')]);
    const r = await runWithInput('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', 'dana', '--default-character-set=koi8r', '-N', '-B', 'appdb'], input, { MYSQL_PWD: token });
    expect(r.stdout).not.toContain('hidden');
    expect(r.stderr).toMatch(/ERROR 1142 \(42000\).*denied by rule sealed-schema/);
  });

  it('refuses a non-ASCII login database outside UTF-8 (1235), and admits it in UTF-8', async () => {
    await expect(viaAirlock({ charset: 'KOI8R_GENERAL_CI', database: 'секрет' })).rejects.toMatchObject({ errno: 1235, message: expect.stringContaining('UTF-8 connection character set') });
    const c = await viaAirlock({ database: 'секрет' });
    try {
      await expect(c.query('SELECT v FROM t')).rejects.toMatchObject({ errno: 1142, message: expect.stringContaining('sealed-schema') });
    } finally {
      await c.end();
    }
  });

  it('replays mariadb-dump output with non-ASCII data (SET character_set_client = @saved_cs_client is followed)', async () => {
    const dump = await runWithInput('mariadb-dump', ['--no-defaults', '-S', maria.server.socket, '-u', 'root', 'appdb', 'dumped'], Buffer.alloc(0), {});
    expect(dump.code).toBe(0);
    const text = Buffer.from(dump.stdout, 'latin1').toString('utf8').replace(/`dumped`/g, '`dumped_copy`');
    expect(text).toContain('SET character_set_client = @saved_cs_client');
    const r = await runWithInput('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', 'dana', 'appdb'], Buffer.from(text), { MYSQL_PWD: token });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await maria.sql('SELECT v FROM dumped_copy ORDER BY id', 'appdb')).toBe('café – ёлка\nplain\n');
  });

  it('forgets a saved charset variable that a view (its function) may have changed', async () => {
    const c = await viaAirlock();
    try {
      await c.query('SET @s = @@character_set_client');
      expect(await rowsOf(c, 'SELECT x FROM sets_s')).toEqual([{ x: 1 }]);
      await c.query('SET character_set_client = @s');
      expect(await rowsOf(c, 'SELECT @@character_set_client AS cs')).toEqual([{ cs: 'gbk' }]);
      await expect(c.query("SELECT 'é' AS e")).rejects.toMatchObject({ errno: 1142 });
    } finally {
      await c.end();
    }
  });

  it('a charset saved after a statement whose effects are unknown is unknown (EXECUTE of a prepared SET NAMES)', async () => {
    // mia: no deny rule, so a statement whose effects are unknown may run.
    const c = await viaAirlock({ user: 'mia', password: maskedToken });
    try {
      await c.query("PREPARE sn FROM 'SET NAMES gbk'");
      await c.query('EXECUTE sn');
      await c.query('SET @v = @@character_set_client');
      await c.query('SET NAMES utf8mb4');
      expect(await rowsOf(c, "SELECT 'é' AS e")).toEqual([{ e: 'é' }]);
      await c.query('SET character_set_client = @v');
      expect(await rowsOf(c, 'SELECT @@character_set_client AS cs')).toEqual([{ cs: 'gbk' }]);
      await expect(c.query("SELECT 'é' AS e")).rejects.toMatchObject({ errno: 1142 });
    } finally {
      await c.end();
    }
  });

  it('still refuses non-ASCII text in a character set airlock cannot read (GBK)', async () => {
    const c = await viaAirlock();
    try {
      await c.query('SET NAMES gbk');
      await expect(c.query("SELECT 'é' AS e")).rejects.toMatchObject({ errno: 1142, message: expect.stringContaining('airlock') });
      await c.query('SET NAMES utf8mb4');
      expect(await rowsOf(c, "SELECT 'é' AS e")).toEqual([{ e: 'é' }]);
    } finally {
      await c.end();
    }
  });
});

describe('errors', () => {
  it('answers a syntax error with ER_PARSE_ERROR (1064), not access denied', async () => {
    const c = await viaAirlock();
    try {
      for (const sql of ['SELEC 1', "SELECT 'unterminated", "SELECT X'0G'"]) {
        await expect(c.query(sql), sql).rejects.toMatchObject({ errno: 1064, code: 'ER_PARSE_ERROR', sqlState: '42000', message: expect.stringContaining('airlock') });
      }
      // The session goes on.
      expect(await rowsOf(c, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    const m = await connectorVia();
    try {
      await expect(m.query('wrong query')).rejects.toMatchObject({ errno: 1064, code: 'ER_PARSE_ERROR' });
    } finally {
      await m.end();
    }
  });

  it('refuses KILL among other statements (1235), runs nothing of the text', async () => {
    const victim = await viaAirlock();
    const c = await viaAirlock({ multipleStatements: true });
    try {
      // The id airlock gave the victim's connection (its handshake's), which KILL names.
      const id = victim.threadId ?? 0;
      await expect(c.query('KILL ?; INSERT INTO notes VALUES (99, \'x\')', [id])).rejects.toMatchObject({ errno: 1235, message: expect.stringContaining('alone in its query') });
      expect(await rowsOf(victim, 'SELECT COUNT(*) AS n FROM notes WHERE id = 99')).toEqual([{ n: 0 }]);
      // Alone, it is mapped to the victim's upstream connection.
      await c.query('KILL ?', [id]);
    } finally {
      await c.end();
      victim.destroy();
    }
  });
});

describe('MariaDB extended column metadata', () => {
  it('reaches mysql2: a JSON column comes back as JSON, as it does directly', async () => {
    const r = await both((c) => rowsOf(c, 'SELECT doc FROM docs WHERE id = 1'));
    expect(r.direct).toEqual([{ doc: { k: [1, 2], s: 'x' } }]);
    expect(r.via).toEqual(r.direct);
  });

  it('reaches the mariadb connector, text and binary protocol', async () => {
    const results: unknown[][] = [];
    for (const open of [connectorVia, connectorDirect]) {
      const c = await open();
      try {
        const meta = (await c.query({ sql: 'SELECT doc FROM docs WHERE id = 1', metaAsArray: true })) as [unknown[], Array<{ isDataTypeFormatJson(): boolean }>];
        results.push([await c.query('SELECT doc, body FROM docs WHERE id = 1'), await c.execute('SELECT doc FROM docs WHERE id = ?', [1]), meta[1][0]?.isDataTypeFormatJson(), await c.query("SELECT 'é' AS e")]);
      } finally {
        await c.end();
      }
    }
    expect(results[1]?.[2]).toBe(true);
    expect(results[0]?.[2]).toBe(true);
    expect(results[1]?.[0]).toMatchObject([{ doc: { k: [1, 2], s: 'x' }, body: 'plain' }]);
    expect(JSON.parse(JSON.stringify(results[0]))).toEqual(JSON.parse(JSON.stringify(results[1])));
  });

  it('is read by the masking relay: a masked column beside a JSON one, text and binary rows', async () => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'mia', password: maskedToken, database: 'appdb', enableCleartextPlugin: true });
    try {
      for (const rows of [await rowsOf(c, 'SELECT doc, body FROM docs WHERE id = 1'), (await c.execute('SELECT doc, body FROM docs WHERE id = ?', [1]))[0]]) {
        const row = (rows as Array<{ doc: unknown; body: unknown }>)[0];
        expect(row?.doc).toEqual({ k: [1, 2], s: 'x' });
        expect(row?.body).not.toBe('plain');
        expect(typeof row?.body).toBe('string');
      }
    } finally {
      await c.end();
    }
  });
});

describe("SET STATEMENT … FOR (the mariadb connector's timeout option)", () => {
  const connector = (user: string, password: string): Promise<mariadbConnector.Connection> =>
    mariadbConnector.createConnection({ host: '127.0.0.1', port, user, password, database: 'appdb', ssl: { ca: readFileSync(certs.ca, 'utf8') } });

  it('runs the statement with its timeout as directly, judged and masked as the inner statement', async () => {
    const via = await connector('dana', token);
    const d = await connectorDirect();
    try {
      const q = { sql: 'SELECT id, body FROM docs WHERE id = 1', timeout: 5000 };
      expect(await via.query(q)).toEqual(await d.query(q));
      // The server's own timeout error, as directly (max_statement_time reached the server).
      const slow = { sql: 'SELECT SLEEP(3)', timeout: 50 };
      const err = (c: mariadbConnector.Connection): Promise<unknown> => c.query(slow).then(() => 'ran', (e: { errno: number }) => e.errno);
      expect(await err(via)).toBe(1969);
      expect(await err(d)).toBe(1969);
      // A deny rule on the inner statement's table still holds.
      await expect(via.query({ sql: 'SELECT body FROM `документы`', timeout: 5000 })).rejects.toMatchObject({ errno: 1142, message: expect.stringContaining('no-secret-docs') });
    } finally {
      await via.end().catch(() => undefined);
      await d.end().catch(() => undefined);
    }
    const masked = await connector('mia', maskedToken);
    try {
      const rows = (await masked.query({ sql: 'SELECT body FROM docs WHERE id = 1', timeout: 5000 })) as Array<{ body: unknown }>;
      expect(rows[0]?.body).not.toBe('plain');
      expect(typeof rows[0]?.body).toBe('string');
    } finally {
      await masked.end();
    }
  });
});
