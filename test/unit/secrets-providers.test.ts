import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Secret, SecretResolver } from '../../src/secrets/index.js';
import { AirlockError } from '../../src/util/errors.js';
import { createLogger } from '../../src/util/log.js';

const dir = mkdtempSync(join(tmpdir(), 'airlock-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function rejection(p: Promise<unknown>): Promise<AirlockError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AirlockError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('Secret redaction', () => {
  const s = new Secret('s3cr3t-VALUE-xyz');
  it('prints as [secret] in inspect, JSON, template strings and errors', () => {
    expect(inspect(s)).toBe('[secret]');
    expect(inspect({ nested: { s } }, { depth: 5 })).not.toContain('s3cr3t');
    expect(JSON.stringify([s, { s }])).toBe('["[secret]",{"s":"[secret]"}]');
    expect(`x ${s} y`).toBe('x [secret] y');
    expect(new Error(`bad ${s}`).message).toBe('bad [secret]');
  });
  it('prints as [secret] through pino under any field name', () => {
    let out = '';
    const sink = new Writable({ write(c: Buffer, _e, cb) { out += c.toString(); cb(); } });
    createLogger('info', sink).info({ lease: { value: s }, arbitrary: s, list: [s] }, `msg ${s}`);
    expect(out).not.toContain('s3cr3t');
    expect(out).toContain('[secret]');
  });
});

describe('env and file providers', () => {
  it('reads env each time and warns on a world-readable file, trimming one newline', async () => {
    const env: NodeJS.ProcessEnv = { A: 'one' };
    const warnings: string[] = [];
    const r = new SecretResolver({ env, warn: (m) => warnings.push(m) });
    expect((await r.resolve('${env:A}')).reveal()).toBe('one');
    env['A'] = 'two';
    expect((await r.resolve('${env:A}')).reveal()).toBe('two');
    const f = join(dir, 'pw');
    writeFileSync(f, 'pw-line\n');
    chmodSync(f, 0o600);
    expect((await r.resolve(`\${file:${f}}`)).reveal()).toBe('pw-line');
    expect(warnings).toEqual([]);
    const g = join(dir, 'pw-open');
    writeFileSync(g, 'open\n\n');
    chmodSync(g, 0o644);
    expect((await r.resolve(`\${file:${g}}`)).reveal()).toBe('open\n');
    expect(warnings.join()).toContain('world-readable');
    expect(warnings.join()).not.toContain('open\n');
  });
});

describe('op provider', () => {
  const bin = join(dir, 'opbin');
  beforeAll(() => {
    rmSync(bin, { recursive: true, force: true });
    writeFileSync(join(dir, 'op-calls'), '');
  });
  function stubOp(script: string): void {
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'op'), `#!/bin/sh\n${script}\n`);
    chmodSync(join(bin, 'op'), 0o755);
  }

  it('runs `op read op://…` with the service account token from the environment', async () => {
    stubOp(`echo "$@" >> '${dir}/op-calls'
if [ "$OP_SERVICE_ACCOUNT_TOKEN" != "ops_tok" ]; then echo "[ERROR] not signed in" >&2; exit 1; fi
case "$*" in *op://prod/db/password*) printf 'op-secret-1\\n';; *) echo "[ERROR] item not found" >&2; exit 1;; esac`);
    const env = { PATH: `${bin}:/usr/bin:/bin`, OP_SERVICE_ACCOUNT_TOKEN: 'ops_tok' };
    const r = new SecretResolver({ env });
    expect((await r.resolve('${op:prod/db/password}')).reveal()).toBe('op-secret-1');
    const calls = readFileSync(join(dir, 'op-calls'), 'utf8');
    expect(calls).toContain('read');
    expect(calls).toContain('op://prod/db/password');
    const e = await rejection(r.resolve('${op:prod/db/missing}'));
    expect(e.code).toBe('AIRLOCK_SECRET_UNRESOLVED');
    expect(e.message).toContain('item not found');
    const noToken = new SecretResolver({ env: { PATH: env.PATH } });
    expect((await rejection(noToken.resolve('${op:prod/db/password}'))).message).toContain('not signed in');
  });

  it('says clearly when op is not installed', async () => {
    const r = new SecretResolver({ env: { PATH: join(dir, 'nowhere') } });
    const e = await rejection(r.resolve('${op:prod/db/password}'));
    expect(e.code).toBe('AIRLOCK_SECRET_UNRESOLVED');
    expect(e.message).toMatch(/1Password CLI "op" is not installed/);
  });
});

describe('vault provider (KV v2 over HTTP)', () => {
  let server: Server;
  let addr = '';
  let hits = 0;
  let leaseSeconds = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits += 1;
      if (req.headers['x-vault-token'] !== 'vault-tok') {
        res.writeHead(403, { 'content-type': 'application/json' }).end('{"errors":["permission denied"]}');
        return;
      }
      if (req.method === 'GET' && req.url === '/v1/secret/data/apps/db') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({ request_id: 'r', lease_id: '', renewable: false, lease_duration: leaseSeconds,
            data: { data: { password: `vault-pw-${hits}`, user: 'app' }, metadata: { version: 3 } } }),
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[]}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    addr = `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('reads data.data[key] with VAULT_TOKEN or a token file; 403/404/missing key are clear errors', async () => {
    const r = new SecretResolver({ env: { VAULT_ADDR: addr, VAULT_TOKEN: 'vault-tok' } });
    expect((await r.resolve('${vault:secret/apps/db#password}')).reveal()).toMatch(/^vault-pw-\d+$/);
    expect((await r.resolve('${vault:secret/apps/db#user}')).reveal()).toBe('app');
    expect((await rejection(r.resolve('${vault:secret/apps/db#nope}'))).message).toContain('no field "nope"');
    expect((await rejection(r.resolve('${vault:secret/apps/none#password}'))).message).toContain('no secret at');
    expect((await rejection(r.resolve('${vault:secret#password}'))).message).toContain('mount/path#key');
    const tokenFile = join(dir, 'vault-token');
    writeFileSync(tokenFile, 'vault-tok\n', { mode: 0o600 });
    const viaFile = new SecretResolver({ env: { VAULT_ADDR: addr, VAULT_TOKEN_FILE: tokenFile } });
    expect((await viaFile.resolve('${vault:secret/apps/db#user}')).reveal()).toBe('app');
    const bad = new SecretResolver({ env: { VAULT_ADDR: addr, VAULT_TOKEN: 'wrong' } });
    const e = await rejection(bad.resolve('${vault:secret/apps/db#password}'));
    expect(e.message).toContain('403');
    expect(e.message).not.toContain('wrong');
  });

  it('caches for the default TTL, but no longer than the Vault lease', async () => {
    let now = 1_000_000;
    const env = { VAULT_ADDR: addr, VAULT_TOKEN: 'vault-tok' };
    leaseSeconds = 0;
    const r = new SecretResolver({ env, now: () => now, cacheTtlMs: 60_000 });
    const first = (await r.resolve('${vault:secret/apps/db#password}')).reveal();
    now += 59_000;
    expect((await r.resolve('${vault:secret/apps/db#password}')).reveal()).toBe(first);
    now += 2_000;
    const second = (await r.resolve('${vault:secret/apps/db#password}')).reveal();
    expect(second).not.toBe(first);

    leaseSeconds = 10;
    const leased = new SecretResolver({ env, now: () => now, cacheTtlMs: 60_000 });
    const a = (await leased.resolve('${vault:secret/apps/db#password}')).reveal();
    now += 9_000;
    expect((await leased.resolve('${vault:secret/apps/db#password}')).reveal()).toBe(a);
    now += 2_000;
    expect((await leased.resolve('${vault:secret/apps/db#password}')).reveal()).not.toBe(a);
    leaseSeconds = 0;
  });
});

describe('exec provider and the cache', () => {
  it('runs the command without a shell and returns its stdout', async () => {
    const script = join(dir, 'print-secret');
    writeFileSync(script, '#!/bin/sh\nprintf "%s-%s\\n" "$1" "$2"\n');
    chmodSync(script, 0o755);
    const r = new SecretResolver({ env: { PATH: '/usr/bin:/bin' } });
    expect((await r.resolve(`\${exec:${script} alpha beta}`)).reveal()).toBe('alpha-beta');
    // No shell: metacharacters are plain arguments.
    expect((await r.resolve(`\${exec:${script} $(id) ;rm}`)).reveal()).toBe('$(id)-;rm');
    const failing = join(dir, 'fail-secret');
    writeFileSync(failing, '#!/bin/sh\necho leaked-value >&2\nexit 3\n');
    chmodSync(failing, 0o755);
    const e = await rejection(r.resolve(`\${exec:${failing}}`));
    expect(e.message).toContain('exit 3');
    expect(e.message).not.toContain('leaked-value');
    expect((await rejection(r.resolve('${exec:/no/such/cmd}'))).message).toContain('not found');
  });

  it('times out a hanging command', async () => {
    const r = new SecretResolver({ env: { PATH: '/usr/bin:/bin' }, timeoutMs: 200 });
    expect((await rejection(r.resolve('${exec:sleep 5}'))).message).toContain('timed out');
  });

  it('shares one lookup between concurrent uses, and invalidate() forces a fresh one', async () => {
    let calls = 0;
    const r = new SecretResolver({
      providers: { count: async () => { calls += 1; await new Promise((res) => setTimeout(res, 10)); return `v${calls}`; } },
    });
    const all = await Promise.all(Array.from({ length: 20 }, () => r.resolve('${count:x}')));
    expect(new Set(all.map((s) => s.reveal()))).toEqual(new Set(['v1']));
    expect(calls).toBe(1);
    r.invalidate();
    expect((await r.resolve('${count:x}')).reveal()).toBe('v2');
    r.invalidate('pre ${count:x} post');
    expect((await r.resolve('${count:x}')).reveal()).toBe('v3');
    expect((await r.resolve('${count:x}')).reveal()).toBe('v3');
  });

  it('does not remember a failure', async () => {
    let n = 0;
    const r = new SecretResolver({
      providers: { flaky: async () => { n += 1; if (n === 1) throw new AirlockError('AIRLOCK_SECRET_UNRESOLVED', 'down'); return 'ok'; } },
    });
    await rejection(r.resolve('${flaky:a}'));
    expect((await r.resolve('${flaky:a}')).reveal()).toBe('ok');
  });
});
