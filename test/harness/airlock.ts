/**
 * Runs the real airlock CLI (`airlock serve`) as a child process with a config the test
 * writes, and keeps everything it prints so tests can grep it for secrets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../..');

export interface RunningAirlock {
  configFile: string;
  stateDir: string;
  /** Everything the daemon printed so far (stdout + stderr). */
  output(): string;
  /** JSON log lines parsed. */
  logs(): Array<Record<string, unknown>>;
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  signal(sig: NodeJS.Signals): void;
  rewriteConfig(doc: Record<string, unknown>): void;
  stop(): Promise<number | null>;
  process: ChildProcess;
}

/** Runs bin/airlock.ts through tsx so tests need no build step. */
export function airlockCommand(args: string[]): { cmd: string; argv: string[] } {
  return { cmd: process.execPath, argv: ['--import', 'tsx', join(ROOT, 'bin/airlock.ts'), ...args] };
}

export async function startAirlock(doc: Record<string, unknown>, opts: { expectFailure?: boolean } = {}): Promise<RunningAirlock> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-daemon-'));
  const stateDir = (doc.state_dir as string | undefined) ?? join(dir, 'state');
  const configFile = join(dir, 'airlock.yaml');
  const write = (d: Record<string, unknown>): void => writeFileSync(configFile, stringify({ state_dir: stateDir, ...d }));
  write(doc);
  const { cmd, argv } = airlockCommand(['serve', '--config', configFile]);
  const child = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, AIRLOCK_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (c: Buffer): void => {
    out += c.toString('utf8');
    for (const w of waiters.splice(0)) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const logs = (): Array<Record<string, unknown>> =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  const waitForLog = async (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = logs().find(pred);
      if (hit !== undefined) return hit;
      if (child.exitCode !== null) throw new Error(`airlock exited (${child.exitCode}):\n${out}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for log line:\n${out}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  const running: RunningAirlock = {
    configFile,
    stateDir,
    output: () => out,
    logs,
    waitForLog,
    signal: (sig) => child.kill(sig),
    rewriteConfig: write,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    process: child,
  };
  if (!opts.expectFailure) await waitForLog((l) => l.msg === 'airlock started', 60_000);
  return running;
}
