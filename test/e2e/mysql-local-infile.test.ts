/**
 * LOAD DATA LOCAL INFILE through airlock (issue 7): the server reads a file from the
 * client's disk, so it is refused unless a rule names `load_data_local` (executable comments
 * cannot hide the LOCAL), the server's request is relayed only for the file the statement
 * names, the file is capped (the statement aborted upstream past the cap), and the audit
 * record carries the file's name, size and SHA-256. Real MariaDB, the `mariadb` client and
 * mysql2, through the real daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { run, type RunResult } from '../harness/clients.js';
import { auditEvents, textUnder } from '../harness/files.js';

const UPSTREAM_PASSWORD = 'infile-Upstream-pw-57';
const CAP = 256 * 1024;
let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let port = 0;
let roomyPort = 0;
let large = '';
let largeSha = '';
const LARGE_ROWS = 300_000;
const tokens: Record<string, string> = {};
let small = '';
let big = '';
let smallSha = '';

beforeAll(async () => {
  issuer = await createTestIssuer();
  maria = await startLocalMaria({
    password: UPSTREAM_PASSWORD,
    setupSql: `CREATE TABLE imports (id int primary key, name varchar(50)) ENGINE=InnoDB;
      CREATE TABLE secrets (id int primary key, name varchar(50)) ENGINE=InnoDB;`,
  });
  small = join(maria.dir, 'in.csv');
  const content = '1,ann\n2,bob\n3,cy\n';
  writeFileSync(small, content);
  smallSha = createHash('sha256').update(content).digest('hex');
  // Past the cap: 20,000 rows, ~300 KiB.
  big = join(maria.dir, 'big.csv');
  writeFileSync(big, Array.from({ length: 20_000 }, (_, i) => `${i + 100},name-${i}-xxxxxxxxxxxx\n`).join(''));
  // Many packets, several MiB: the file flows with backpressure through the relay.
  large = join(maria.dir, 'large.csv');
  const largeText = Array.from({ length: LARGE_ROWS }, (_, i) => `${i + 1000000},row-${i}-${'y'.repeat(16)}\n`).join('');
  writeFileSync(large, largeText);
  largeSha = createHash('sha256').update(largeText).digest('hex');
  port = await freePort();
  roomyPort = await freePort();
  airlock = await startAirlock({
    state_dir: join(maria.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      maria.connection('maria', port, { allow_groups: ['etl', 'dev'], local_infile: { max_bytes: CAP } }),
      maria.connection('roomy', roomyPort, { allow_groups: ['etl'] }),
    ],
    rules: [
      { name: 'etl-loads-imports', when: { groups: ['etl'], statements: ['load_data_local'], tables: ['imports', 'big_imports'] }, effect: 'allow' },
      { name: 'dev-server-loads', when: { groups: ['dev'], statements: ['load_data'] }, effect: 'allow' },
    ],
  });
  for (const [sub, group] of [['erin', 'etl'], ['dave', 'dev']] as const) tokens[sub] = await issuer.token({ sub, groups: [group] });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
});

function mariadb(sub: string, sql: string, localInfile = true): Promise<RunResult> {
  return run('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', sub, '--connect-timeout=10', `--local-infile=${localInfile ? 1 : 0}`, '-N', '-B', 'appdb', '-e', sql], {
    env: { MYSQL_PWD: tokens[sub] ?? '' },
  });
}

const count = async (table: string): Promise<number> => Number((await maria.sql(`SELECT COUNT(*) FROM ${table}`, 'appdb')).trim());

const auditText = (): string => textUnder(join(maria.dir, 'state', 'audit'));
interface InfileResult {
  session: string;
  errorCode?: string;
  localInfile: { file: string; bytes: number; sha256: string | null };
}
/** The result events that carry a LOAD DATA LOCAL file. */
const infileResults = (): InfileResult[] =>
  auditEvents(join(maria.dir, 'state', 'audit')).filter((e) => e.type === 'result' && e.localInfile !== undefined) as unknown as InfileResult[];

describe('allowed by a rule naming load_data_local', () => {
  it('the mariadb client loads its file; the audit records its name, size and SHA-256', async () => {
    const r = await mariadb('erin', `LOAD DATA LOCAL INFILE '${small}' INTO TABLE imports FIELDS TERMINATED BY ','`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await count('imports')).toBe(3);
    await new Promise((res) => setTimeout(res, 300));
    const results = infileResults();
    expect(results.map((x) => x.localInfile)).toContainEqual({ file: small, bytes: 17, sha256: smallSha });
  });

  it('`airlock sessions show` says what file was sent', async () => {
    const session = infileResults().find((e) => e.localInfile.sha256 === smallSha)?.session ?? '';
    expect(session).not.toBe('');
    const { cmd, argv } = airlockCommand(['sessions', 'show', session, '--config', airlock.configFile]);
    const shown = await run(cmd, argv);
    expect(shown.stdout).toContain(`local file ${JSON.stringify(small)} 17 bytes sha256 ${smallSha}`);
  });

  it('a file of several MiB arrives whole (every row, the same SHA-256 in the record)', async () => {
    await maria.sql('CREATE TABLE IF NOT EXISTS big_imports (id int primary key, name varchar(50)) ENGINE=InnoDB', 'appdb');
    const r = await run('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(roomyPort), '-u', 'erin', '--local-infile=1', 'appdb', '-e', `LOAD DATA LOCAL INFILE '${large}' INTO TABLE big_imports FIELDS TERMINATED BY ','`], { env: { MYSQL_PWD: tokens.erin ?? '' } });
    expect(r.stderr).toBe('');
    expect(await count('big_imports')).toBe(LARGE_ROWS);
    await new Promise((res) => setTimeout(res, 300));
    expect(auditText()).toContain(`"sha256":"${largeSha}"`);
  }, 60_000);

  it('mysql2 with an infileStreamFactory loads through airlock too', async () => {
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port,
      user: 'erin',
      password: tokens.erin ?? '',
      database: 'appdb',
      enableCleartextPlugin: true,
      infileStreamFactory: (path: string) => createReadStream(path),
    });
    try {
      await c.query('DELETE FROM imports');
      const [res] = await c.query(`LOAD DATA LOCAL INFILE '${small}' INTO TABLE imports FIELDS TERMINATED BY ','`);
      expect((res as { affectedRows: number }).affectedRows).toBe(3);
    } finally {
      await c.end();
    }
    expect(await count('imports')).toBe(3);
  });
});

describe('refused', () => {
  it('without a rule naming it — even where load_data is allowed, and however LOCAL is written', async () => {
    const before = await count('imports');
    for (const local of ['LOCAL', '/*!LOCAL*/', '/*!50000 LOCAL */', '/*M!100000 LOCAL */']) {
      const r = await mariadb('dave', `LOAD DATA ${local} INFILE '${small}' REPLACE INTO TABLE imports FIELDS TERMINATED BY ','`);
      expect(r.stderr, local).toMatch(/ERROR 1142 \(42000\).*denied by rule \(load_data_local\): no rule allows LOAD DATA LOCAL INFILE/);
    }
    // A rule naming it for one table does not reach another.
    const r = await mariadb('erin', `LOAD DATA LOCAL INFILE '${small}' INTO TABLE secrets FIELDS TERMINATED BY ','`);
    expect(r.stderr).toContain('(load_data_local)');
    expect(await count('imports')).toBe(before);
    expect(await count('secrets')).toBe(0);
  });

  it('when the server asks for a file the statement does not name as one literal', async () => {
    // Policy admits it (the statement is a LOAD DATA LOCAL into imports), but "…" may be an
    // identifier under ANSI_QUOTES: airlock cannot tell which file it names, so it refuses the request.
    const before = await count('imports');
    const r = await mariadb('erin', `LOAD DATA LOCAL INFILE "${small}" REPLACE INTO TABLE imports FIELDS TERMINATED BY ','`);
    expect(r.stderr).toMatch(/ERROR 3948 \(42000\).*LOAD DATA LOCAL INFILE is refused: the statement does not name its file/);
    expect(await count('imports')).toBe(before);
    // The session goes on after the refusal.
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'erin', password: tokens.erin ?? '', database: 'appdb', enableCleartextPlugin: true, infileStreamFactory: (p: string) => createReadStream(p) });
    try {
      await expect(c.query(`LOAD DATA LOCAL INFILE "${small}" INTO TABLE imports`)).rejects.toMatchObject({ errno: 3948 });
      const [rows] = await c.query('SELECT COUNT(*) AS n FROM imports');
      expect((rows as Array<{ n: number }>)[0]?.n).toBe(before);
    } finally {
      await c.end();
    }
  });

  it('when the client did not enable LOCAL INFILE: the file is not read', async () => {
    const before = await count('imports');
    const r = await mariadb('erin', `LOAD DATA LOCAL INFILE '${small}' REPLACE INTO TABLE imports FIELDS TERMINATED BY ','`, false);
    expect(r.code).not.toBe(0);
    // airlock passes LOCAL_FILES upstream only when the client asked for it: the server itself refuses.
    expect(r.stderr).toContain('ERROR 4166');
    expect(await count('imports')).toBe(before);
  });

  it('a file past local_infile.max_bytes: the statement is aborted upstream (no row of it lands) and the session ends', async () => {
    const before = await count('imports');
    const r = await mariadb('erin', `LOAD DATA LOCAL INFILE '${big}' INTO TABLE imports FIELDS TERMINATED BY ','`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR 1153 \(08S01\).*longer than local_infile.max_bytes \(262144 bytes\)/);
    expect(await count('imports')).toBe(before);
    await new Promise((res) => setTimeout(res, 300));
    const cut = infileResults().filter((e) => e.localInfile.file === big);
    expect(cut.length).toBe(1);
    expect(cut[0]?.localInfile.sha256).toBeNull();
    expect(cut[0]?.localInfile.bytes).toBeGreaterThan(CAP);
    expect(cut[0]?.errorCode).toBe('08S01');
    // The daemon still serves.
    const ok = await mariadb('erin', 'SELECT COUNT(*) FROM imports');
    expect(ok.stdout.trim()).toBe(String(before));
  });
});

describe('secrets', () => {
  it('never shows the upstream password or a token in the daemon output or the audit log', () => {
    const out = airlock.output() + auditText();
    expect(out).not.toContain(UPSTREAM_PASSWORD);
    for (const t of Object.values(tokens)) expect(out).not.toContain(t);
  });
});
