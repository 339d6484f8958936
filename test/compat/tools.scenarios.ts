/** Command-line tools: psql, `pg_dump | pg_restore` and `mariadb-dump | mariadb` round trips. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../harness/clients.js';
import type { Scenario, Target } from './differential.js';

/** Set by the suite: the PostgreSQL binaries matching the server (pg_dump refuses a newer server). */
export const toolPaths = { pgBin: '' };

const pgTool = (t: Target, tool: string, args: string[], input?: string): Promise<RunResult> =>
  run(join(toolPaths.pgBin, tool), ['-h', t.host, '-p', String(t.port), '-U', t.user, ...args], {
    env: { PGPASSWORD: t.password, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable' },
    ...(input === undefined ? {} : { input }),
  });

const mariaTool = (t: Target, tool: string, args: string[], input?: string): Promise<RunResult> =>
  run(tool, ['--no-defaults', '-h', t.host, '-P', String(t.port), '-u', t.user, ...(t.tlsCa === undefined ? [] : [`--ssl-ca=${t.tlsCa}`]), ...args], {
    env: { MYSQL_PWD: t.password },
    ...(input === undefined ? {} : { input }),
  });

/** Lines that name the moment, the host or a random key differ by nature; the rest must match. */
const stable = (dump: string): string[] =>
  dump.split('\n').filter((l) => !/^\\(un)?restrict |^-- (Dump completed|Host:|Server version|Started on|Completed on)/.test(l));

const outcomeOf = (r: RunResult): { code: number | null; stderr: string } => ({ code: r.code, stderr: r.stderr.trim() });

export const toolScenarios: Scenario[] = [
  {
    driver: 'psql', name: 'psql: \\d, a script with several statements, \\copy out',
    run: async (t) => {
      const d = await pgTool(t, 'psql', ['-X', '-d', t.database, '-c', '\\d items']);
      const script = await pgTool(t, 'psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', t.database], "CREATE TEMP TABLE s (a int); INSERT INTO s VALUES (1),(2);\nSELECT sum(a) FROM s; \\copy (SELECT id FROM items WHERE id < 4 ORDER BY id) TO STDOUT\n");
      return { d: [outcomeOf(d), d.stdout], script: [outcomeOf(script), script.stdout] };
    },
  },
  {
    driver: 'psql', name: 'psql: PGOPTIONS and an error with ON_ERROR_STOP',
    run: async (t) => {
      const r = await run(join(toolPaths.pgBin, 'psql'), ['-X', '-At', '-h', t.host, '-p', String(t.port), '-U', t.user, '-d', t.database, '-v', 'ON_ERROR_STOP=1', '-c', 'SHOW default_transaction_isolation', '-c', 'SELECT 1/0'], {
        env: { PGPASSWORD: t.password, PGOPTIONS: '-c default_transaction_isolation=serializable', PGSSLMODE: 'disable' },
      });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    },
  },
  {
    driver: 'pg_dump', name: 'pg_dump -Fc | pg_restore --clean round trip',
    run: async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'airlock-compat-dump-'));
      const archive = join(dir, 'dump.custom');
      const dump = await pgTool(t, 'pg_dump', ['-d', t.database, '-t', 'dumped', '-t', 'dumped_view', '--no-owner', '-Fc', '-f', archive]);
      const plain = await pgTool(t, 'pg_dump', ['-d', t.database, '-t', 'dumped', '-t', 'dumped_view', '--no-owner']);
      const restore = await pgTool(t, 'pg_restore', ['-d', t.database, '--clean', '--if-exists', '--no-owner', '--single-transaction', archive]);
      const check = await pgTool(t, 'psql', ['-X', '-At', '-d', t.database, '-c', "SELECT count(*), sum(id), md5(string_agg(name || at, ',' ORDER BY id)) FROM dumped", '-c', 'SELECT name FROM dumped_view WHERE id = 7']);
      return { dump: outcomeOf(dump), plain: stable(plain.stdout), restore: outcomeOf(restore), check: check.stdout };
    },
  },
  {
    driver: 'mariadb-dump', name: 'mariadb-dump | mariadb round trip',
    run: async (t) => {
      const dump = await mariaTool(t, 'mariadb-dump', ['--single-transaction', t.database, 'dumped']);
      const restore = await mariaTool(t, 'mariadb', [t.database], dump.stdout);
      const check = await mariaTool(t, 'mariadb', ['-N', '-B', t.database, '-e', "SELECT count(*), sum(id), md5(group_concat(name, at ORDER BY id)) FROM dumped"]);
      return { dump: outcomeOf(dump), text: stable(dump.stdout), restore: outcomeOf(restore), check: check.stdout };
    },
  },
];
