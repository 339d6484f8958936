/**
 * `airlock dev` / `make dev`: a throwaway PostgreSQL with a small demo schema, airlock with
 * the dev issuer in front of it, and a printed token and psql line.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { startPgCluster, findPgBinDir } from './pgcluster.js';
import { validateConfig } from '../config.js';
import { createLogger } from '../../src/util/log.js';
import { Daemon } from '../daemon.js';
import { mintDevToken } from '../../src/auth/verifier.js';
import { AirlockError } from '../../src/util/errors.js';

const DEMO_SCHEMA = `
CREATE TABLE customers (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  card_number text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (name, email, card_number) VALUES
  ('Ada Lovelace', 'ada@example.com', '4111111111111111'),
  ('Alan Turing', 'alan@example.org', '5500005555555559'),
  ('Grace Hopper', 'grace@example.net', '340000000000009'),
  ('Edsger Dijkstra', 'edsger@example.com', '6011000000000004');
CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers(id),
  amount numeric(10,2) NOT NULL,
  status text NOT NULL DEFAULT 'open'
);
INSERT INTO orders (customer_id, amount) VALUES (1, 12.50), (2, 99.00), (3, 5.25), (1, 42.00);
`;

export interface DevOptions {
  port: number;
  adminPort: number;
  stateDir?: string;
}

export async function runDev(opts: DevOptions): Promise<void> {
  if (findPgBinDir() === null) {
    throw new AirlockError('AIRLOCK_UNSUPPORTED', 'PostgreSQL server binaries not found: install them with "apt-get install postgresql" (or run make dev as root)');
  }
  const stateDir = resolve(opts.stateDir ?? 'var/dev');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const pg = await startPgCluster();
  const appPassword = randomBytes(24).toString('base64url');
  const passwordFile = join(stateDir, 'app-db-password');
  writeFileSync(passwordFile, `${appPassword}\n`, { mode: 0o600 });
  await pg.psql('CREATE DATABASE appdb');
  await pg.psql(`CREATE ROLE app LOGIN PASSWORD '${appPassword}'`);
  await pg.psql('GRANT ALL ON SCHEMA public TO app', { db: 'appdb' });
  await pg.psql(`SET ROLE app; ${DEMO_SCHEMA}`, { db: 'appdb' });

  const doc = {
    state_dir: stateDir,
    admin: { listen: `127.0.0.1:${opts.adminPort}` },
    auth: { dev_issuer: true },
    // The web console's sessions and audit pages are for auditors; in dev, alice (dba) is one.
    audit: { auditors: ['dba'] },
    connections: [
      {
        name: 'appdb',
        protocol: 'postgres',
        listen: `127.0.0.1:${opts.port}`,
        upstream: { host: '127.0.0.1', port: pg.port, database: 'appdb', tls: 'disable' },
        credentials: { type: 'static', username: 'app', password: `\${file:${passwordFile}}` },
        allow_groups: ['dba', 'agents', 'ci', 'dev'],
      },
    ],
    rules: [
      { name: 'no-unbounded-writes', when: { statements: ['update', 'delete'], without_where: true }, effect: 'deny', reason: 'UPDATE/DELETE need a WHERE clause' },
      { name: 'drops-need-a-dba', when: { groups: ['dev'], statements: ['drop', 'truncate'] }, effect: 'approve', approvers: ['dba'], timeout: '10m' },
      { name: 'no-ddl-for-agents', when: { groups: ['agents'], statements: ['drop', 'truncate', 'alter', 'create', 'grant', 'revoke'] }, effect: 'deny', reason: 'agents may not change the schema' },
    ],
  };
  const configFile = join(stateDir, 'airlock.yaml');
  writeFileSync(configFile, stringify(doc), { mode: 0o600 });
  const parsed = validateConfig(doc, stateDir);
  if (!parsed.ok) throw new AirlockError('AIRLOCK_CONFIG_INVALID', parsed.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  const daemon = new Daemon(parsed.config, createLogger(process.env.AIRLOCK_LOG_LEVEL ?? 'info'), configFile);
  try {
    await daemon.start();
  } catch (e) {
    await pg.stop();
    throw e;
  }
  const token = await mintDevToken(parsed.config, 'alice', ['dba'], 'human', 8 * 3_600_000);
  const bobToken = await mintDevToken(parsed.config, 'bob', ['dev'], 'human', 8 * 3_600_000);
  const agentToken = await mintDevToken(parsed.config, 'claude', ['agents'], 'agent', 8 * 3_600_000);
  process.stderr.write(
    [
      '',
      'airlock dev is running (Ctrl-C stops it and removes the throwaway database).',
      `  postgres:  127.0.0.1:${opts.port} (database appdb; demo tables customers, orders)`,
      `  admin API: http://127.0.0.1:${opts.adminPort}`,
      `  console:   http://127.0.0.1:${opts.adminPort}/console  (sign in as alice, approver, or bob, requester)`,
      `  config:    ${configFile}`,
      '',
      '  # alice, group dba:',
      `  export TOKEN=${token}`,
      `  PGPASSWORD="$TOKEN" psql "host=127.0.0.1 port=${opts.port} dbname=appdb user=alice"`,
      '',
      '  # bob, group dev: a DROP or TRUNCATE waits for alice to approve it in the console:',
      `  PGPASSWORD=${bobToken} psql "host=127.0.0.1 port=${opts.port} dbname=appdb user=bob"`,
      '',
      '  # an agent (group agents; schema changes denied):',
      `  PGPASSWORD=${agentToken} psql "host=127.0.0.1 port=${opts.port} dbname=appdb user=claude"`,
      '',
      `  # more tokens: node dist/bin/airlock.js token mint --config ${configFile} --sub bob --groups ci`,
      '',
    ].join('\n'),
  );
  await new Promise<void>((done) => {
    const stop = (): void => {
      void daemon.stop().then(() => pg.stop()).then(done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.on('SIGHUP', () => void daemon.reload());
  });
}
