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

/**
 * Like `run` for an interactive shell on a pty (ssh -tt): each line is typed once the shell shows a prompt
 * (output ending in `$ ` or `# `) after the previous one, as a person types, instead of all input ahead of
 * the shell, which a loaded machine can deliver before the shell reads it. After `promptWaitMs` without a
 * prompt the line is typed anyway.
 */
export function runTyped(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; lines: string[]; timeoutMs?: number; promptWaitMs?: number }): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let next = 0;
    let seenAt = 0;
    let timer: NodeJS.Timeout | undefined;
    const typeNext = (): void => {
      clearTimeout(timer);
      if (next >= opts.lines.length) return;
      child.stdin.write(`${opts.lines[next++] ?? ''}\n`);
      if (next >= opts.lines.length) child.stdin.end();
      seenAt = stdout.length;
      timer = setTimeout(typeNext, opts.promptWaitMs ?? 5_000);
    };
    const prompted = (): boolean => /[$#] $/.test(stdout.slice(seenAt).replace(/\u001b\[[0-9;?]*[A-Za-z]/g, ''));
    child.stdin.on('error', () => undefined);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (prompted()) typeNext();
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    timer = setTimeout(typeNext, opts.promptWaitMs ?? 5_000);
    const kill = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(kill);
      resolve({ code, stdout, stderr });
    });
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
