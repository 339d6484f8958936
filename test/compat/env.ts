/**
 * The compat suite's world: a throwaway PostgreSQL and MariaDB from test/harness, and the real
 * airlock daemon in front of both with a permissive policy (everything allowed, LOAD DATA LOCAL
 * admitted, no masking; text airlock cannot parse stays refused, as by default) — so what is measured is protocol fidelity.
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { freePort } from '../harness/ports.js';
import { startAppDb, type AppDb } from '../harness/appdb.js';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { makeTestCerts } from '../harness/tls.js';
import type { Target } from './differential.js';

export interface CompatEnv {
  pg: { direct: Target; airlock: Target };
  mysql: { direct: Target; airlock: Target };
  pgBinDir: string;
  /** A file for LOAD DATA LOCAL, readable by the test process. */
  csvFile: string;
  /** Everything airlock printed plus the secrets that must never appear in it. */
  daemonOutput(): string;
  secrets: string[];
  stop(): Promise<void>;
}

const PG_SETUP = `
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[], doc jsonb, created timestamptz, data bytea);
INSERT INTO items SELECT g, 'item ' || g, g * 1.25, ARRAY['t' || g, 'x'], jsonb_build_object('n', g, 'odd', g % 2 = 1), '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 hour', decode(lpad(to_hex(g), 4, '0'), 'hex') FROM generate_series(1, 50) g;
CREATE TABLE big (id int PRIMARY KEY, v text);
INSERT INTO big SELECT g, repeat('v', g % 40) FROM generate_series(1, 5000) g;
CREATE TABLE dumped (id int PRIMARY KEY, name text, at date, CHECK (id > 0));
INSERT INTO dumped SELECT g, 'row ' || g, DATE '2024-01-01' + g FROM generate_series(1, 200) g;
CREATE VIEW dumped_view AS SELECT id, upper(name) AS name FROM dumped;
`;

const MARIA_SETUP = `
CREATE TABLE items (id int PRIMARY KEY, name varchar(50) NOT NULL, price decimal(10,2), doc JSON, created datetime(3), data blob, flag bit(1), ratio double);
INSERT INTO items SELECT seq, concat('item ', seq), seq * 1.25, json_object('n', seq, 'odd', seq % 2 = 1), timestamp'2024-01-01 00:00:00' + interval seq hour, unhex(lpad(hex(seq), 4, '0')), seq % 2, seq / 3 FROM seq_1_to_50;
CREATE TABLE big (id int PRIMARY KEY, v varchar(64));
INSERT INTO big SELECT seq, repeat('v', seq % 40) FROM seq_1_to_5000;
CREATE TABLE dumped (id int PRIMARY KEY, name varchar(40), at date);
INSERT INTO dumped SELECT seq, concat('row ', seq), date'2024-01-01' + interval seq day FROM seq_1_to_200;
CREATE TABLE loaded (id int PRIMARY KEY, name varchar(40));
`;

export async function startCompatEnv(): Promise<CompatEnv> {
  const pgPassword = `pg-app-${Math.random().toString(36).slice(2)}-secret`;
  const myPassword = `my-app-${Math.random().toString(36).slice(2)}-secret`;
  const issuer = await createTestIssuer();
  // MariaDB Connector/Node.js sends a cleartext password (the token) only over TLS, even on
  // loopback: the MySQL listener and the server both offer TLS, and that connector uses it both ways.
  const certs = makeTestCerts();
  const [db, maria] = await Promise.all([
    startAppDb({ password: pgPassword, setupSql: PG_SETUP, ssl: { cert: certs.cert, key: certs.key } }),
    startLocalMaria({ password: myPassword, setupSql: MARIA_SETUP, tls: { cert: certs.cert, key: certs.key, ca: certs.ca } }),
  ]) as [AppDb, LocalMaria];
  // The app user may kill its own connections (KILL, pg_terminate_backend of its own backends need nothing more).
  await maria.sql("GRANT PROCESS, CONNECTION ADMIN ON *.* TO 'app'@'%'");
  await maria.sql("GRANT ALL ON `dumpcopy`.* TO 'app'@'%'");
  const csvFile = join(maria.dir, 'loaded.csv');
  writeFileSync(csvFile, Array.from({ length: 300 }, (_, i) => `${i + 1},name ${i + 1}`).join('\n') + '\n');
  const pgPort = await freePort();
  const myPort = await freePort();
  const myDefaultPort = await freePort();
  const airlock: RunningAirlock = await startAirlock({
    state_dir: join(db.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      db.connection('compat-pg', pgPort, { allow_groups: ['compat'], tls: { cert: certs.cert, key: certs.key } }),
      maria.connection('compat-maria', myPort, { allow_groups: ['compat'], tls: { cert: certs.cert, key: certs.key } }),
      // The same server with no rule naming load_data_local: airlock's default.
      maria.connection('compat-maria-default', myDefaultPort, { allow_groups: ['compat'] }),
    ],
    rules: [
      // Permissive on purpose: the suite measures protocol fidelity, not policy. Unparsed text
      // stays refused (the default): a valid statement airlock cannot read is a fidelity defect.
      { name: 'compat-local-infile', when: { groups: ['compat'], connections: ['compat-maria'], statements: ['load_data_local'] }, effect: 'allow' },
    ],
  });
  const token = await issuer.token({ sub: 'alice', groups: ['compat'] }, { ttlSeconds: 3600 });
  const pgDirect: Target = { via: 'direct', host: '127.0.0.1', port: db.upstream.port, user: 'app', password: pgPassword, database: 'appdb', tlsCa: certs.ca };
  const pgAirlock: Target = { via: 'airlock', host: '127.0.0.1', port: pgPort, user: 'alice', password: token, database: 'appdb', tlsCa: certs.ca };
  const myDirect: Target = { via: 'direct', host: '127.0.0.1', port: maria.port, user: 'app', password: myPassword, database: 'appdb', tlsCa: certs.ca };
  const myAirlock: Target = { via: 'airlock', host: '127.0.0.1', port: myPort, user: 'alice', password: token, database: 'appdb', tlsCa: certs.ca, defaultPolicyPort: myDefaultPort };
  return {
    pg: { direct: { ...pgDirect, peer: pgDirect }, airlock: { ...pgAirlock, peer: pgDirect } },
    mysql: { direct: { ...myDirect, peer: myDirect }, airlock: { ...myAirlock, peer: myDirect } },
    pgBinDir: db.upstream.binDir,
    csvFile,
    daemonOutput: () => airlock.output(),
    secrets: [pgPassword, myPassword, token],
    stop: async () => {
      await airlock.stop();
      await Promise.all([db.upstream.stop(), maria.stop()]);
    },
  };
}
