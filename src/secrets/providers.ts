/**
 * Secret providers beyond env/file: the 1Password CLI, HashiCorp Vault KV v2 and a
 * generic command. Each has a timeout; no error text ever carries the secret value.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AirlockError } from '../util/errors.js';

/** A provider's answer: the value, and how long it may be cached when the source says so (Vault leases). */
export interface ProvidedSecret {
  value: string;
  ttlMs?: number;
}

export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000;

function unresolved(message: string, cause?: unknown): AirlockError {
  return new AirlockError('AIRLOCK_SECRET_UNRESOLVED', message, cause === undefined ? {} : { cause });
}

interface RunResult {
  stdout: string;
  stderr: string;
}

interface RunFailure {
  missing: boolean;
  timedOut: boolean;
  exitCode: number | null;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 1024 * 1024, encoding: 'utf8', windowsHide: true }, (err, stdout, stderr) => {
      if (err === null) {
        resolve({ stdout, stderr });
        return;
      }
      const code = (err as NodeJS.ErrnoException).code;
      const failure: RunFailure = {
        missing: code === 'ENOENT',
        timedOut: err.killed === true || (err as { signal?: string }).signal === 'SIGTERM',
        exitCode: typeof code === 'number' ? code : null,
        stderr: String(stderr ?? ''),
      };
      reject(failure);
    });
  });
}

function isRunFailure(e: unknown): e is RunFailure {
  return typeof e === 'object' && e !== null && 'missing' in e && 'timedOut' in e;
}

/** stdout minus one trailing newline, as `op read` and most commands print it. */
function trimOneNewline(s: string): string {
  return s.replace(/\r?\n$/, '');
}

/**
 * `${op:vault/item/field}` → `op read op://vault/item/field`. The CLI takes the service
 * account token from OP_SERVICE_ACCOUNT_TOKEN in the environment passed here.
 */
export function onePasswordProvider(env: NodeJS.ProcessEnv, timeoutMs = DEFAULT_PROVIDER_TIMEOUT_MS) {
  return async (argument: string): Promise<ProvidedSecret> => {
    const ref = argument.startsWith('op://') ? argument : `op://${argument}`;
    try {
      const { stdout } = await run('op', ['read', '--no-newline', ref], env, timeoutMs);
      if (stdout === '') throw unresolved(`1Password reference ${ref} is empty`);
      return { value: trimOneNewline(stdout) };
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      if (isRunFailure(e)) {
        if (e.missing) {
          throw unresolved(`the 1Password CLI "op" is not installed or not on PATH (needed for \${op:${argument}})`);
        }
        if (e.timedOut) throw unresolved(`1Password CLI timed out reading ${ref}`);
        // op's own diagnostics name the problem (not signed in, no such item); they never echo the value.
        const why = e.stderr.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 200) ?? `exit ${e.exitCode ?? '?'}`;
        throw unresolved(`1Password CLI could not read ${ref}: ${why}`);
      }
      throw unresolved(`1Password CLI could not read ${ref}`, e);
    }
  };
}

/**
 * `${exec:command args}` — the command's stdout. Arguments are split on whitespace and
 * run without a shell. The command's stderr is not repeated: it is arbitrary text.
 */
export function execProvider(env: NodeJS.ProcessEnv, timeoutMs = DEFAULT_PROVIDER_TIMEOUT_MS) {
  return async (argument: string): Promise<ProvidedSecret> => {
    const [file, ...args] = argument.trim().split(/\s+/);
    if (file === undefined || file === '') throw unresolved('${exec:…} names no command');
    try {
      const { stdout } = await run(file, args, env, timeoutMs);
      const value = trimOneNewline(stdout);
      if (value === '') throw unresolved(`secret command ${file} printed nothing`);
      return { value };
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      if (isRunFailure(e)) {
        if (e.missing) throw unresolved(`secret command ${file} was not found`);
        if (e.timedOut) throw unresolved(`secret command ${file} timed out after ${timeoutMs} ms`);
        throw unresolved(`secret command ${file} failed (exit ${e.exitCode ?? '?'})`);
      }
      throw unresolved(`secret command ${file} failed`, e);
    }
  };
}

function vaultToken(env: NodeJS.ProcessEnv): string {
  const direct = env['VAULT_TOKEN'];
  if (direct !== undefined && direct !== '') return direct;
  const file = env['VAULT_TOKEN_FILE'] ?? join(env['HOME'] ?? homedir(), '.vault-token');
  try {
    const t = readFileSync(file, 'utf8').trim();
    if (t !== '') return t;
  } catch {
    // reported below without the path's contents
  }
  throw unresolved(`no Vault token: set VAULT_TOKEN or VAULT_TOKEN_FILE (or write ${file})`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * `${vault:mount/path#key}` — HashiCorp Vault KV v2: GET /v1/<mount>/data/<path>, value
 * `data.data[key]`. A positive `lease_duration` bounds how long the value is cached.
 */
export function vaultProvider(env: NodeJS.ProcessEnv, timeoutMs = DEFAULT_PROVIDER_TIMEOUT_MS) {
  return async (argument: string): Promise<ProvidedSecret> => {
    const hash = argument.lastIndexOf('#');
    const where = hash < 0 ? argument : argument.slice(0, hash);
    const key = hash < 0 ? '' : argument.slice(hash + 1);
    const slash = where.indexOf('/');
    if (slash <= 0 || slash === where.length - 1 || key === '') {
      throw unresolved(`\${vault:${argument}} must have the form mount/path#key`);
    }
    const mount = where.slice(0, slash);
    const path = where.slice(slash + 1);
    const addr = env['VAULT_ADDR'];
    if (addr === undefined || addr === '') throw unresolved('VAULT_ADDR is not set (needed for ${vault:…})');
    const token = vaultToken(env);
    const encPath = path.split('/').map(encodeURIComponent).join('/');
    const url = `${addr.replace(/\/+$/, '')}/v1/${encodeURIComponent(mount)}/data/${encPath}`;
    const headers: Record<string, string> = { 'X-Vault-Token': token, Accept: 'application/json' };
    const ns = env['VAULT_NAMESPACE'];
    if (ns !== undefined && ns !== '') headers['X-Vault-Namespace'] = ns;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (e) {
      throw unresolved(`Vault at ${addr} could not be reached for ${mount}/${path}`, e);
    }
    if (res.status === 403) throw unresolved(`Vault refused the token for ${mount}/${path} (403)`);
    if (res.status === 404) throw unresolved(`Vault has no secret at ${mount}/${path}`);
    if (!res.ok) throw unresolved(`Vault answered ${res.status} for ${mount}/${path}`);
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw unresolved(`Vault answered with a body that is not JSON for ${mount}/${path}`);
    }
    const inner = isRecord(body) && isRecord(body['data']) ? body['data']['data'] : undefined;
    if (!isRecord(inner)) throw unresolved(`Vault's answer for ${mount}/${path} is not KV v2 (no data.data)`);
    const v = inner[key];
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw unresolved(`Vault secret ${mount}/${path} has no field "${key}"`);
    }
    const lease = isRecord(body) ? body['lease_duration'] : undefined;
    const ttlMs = typeof lease === 'number' && lease > 0 ? lease * 1000 : undefined;
    return ttlMs === undefined ? { value: String(v) } : { value: String(v), ttlMs };
  };
}
