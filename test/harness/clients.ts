/** Real client programs (psql, pgbench) run as child processes, with their full output. */
import { execFile, spawn } from 'node:child_process';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 512 * 1024 * 1024, cwd: opts.cwd },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((err as unknown as { code: number }).code) : child.exitCode;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    // A client that exits before reading all its input must not become an unhandled EPIPE.
    child.stdin?.on('error', () => undefined);
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

export interface PsqlTarget {
  port: number;
  token: string;
  db?: string;
  user?: string;
  sslmode?: string;
}

/** psql through airlock: -X (no psqlrc), -v ON_ERROR_STOP=1, unaligned tuples-only unless args say otherwise. */
export function psql(t: PsqlTarget, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  const conn = `host=127.0.0.1 port=${t.port} dbname=${t.db ?? 'appdb'} user=${t.user ?? 'alice'} sslmode=${t.sslmode ?? 'disable'} connect_timeout=10`;
  return run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', conn, ...args], { env: { PGPASSWORD: t.token, ...opts.env }, ...(opts.input === undefined ? {} : { input: opts.input }) });
}

export function spawnPsql(t: PsqlTarget, args: string[]): ReturnType<typeof spawn> {
  const conn = `host=127.0.0.1 port=${t.port} dbname=${t.db ?? 'appdb'} user=${t.user ?? 'alice'} sslmode=${t.sslmode ?? 'disable'}`;
  return spawn('psql', ['-X', '-d', conn, ...args], { env: { ...process.env, PGPASSWORD: t.token }, stdio: ['ignore', 'pipe', 'pipe'] });
}
