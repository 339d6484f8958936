/** The CLI's public interface: config check, token mint, serve failing fast. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { airlockCommand } from '../harness/airlock.js';
import { run } from '../harness/clients.js';
import { freePort } from '../../app/dev/pgcluster.js';

function configFile(doc: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cli-'));
  const f = join(dir, 'airlock.yaml');
  writeFileSync(f, typeof doc === 'string' ? doc : stringify({ state_dir: join(dir, 'state'), ...(doc as object) }));
  return f;
}

function airlock(args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof run> {
  const { cmd, argv } = airlockCommand(args);
  return run(cmd, argv, { env });
}

const goodConnection = (port: number): Record<string, unknown> => ({
  name: 'appdb',
  protocol: 'postgres',
  listen: `127.0.0.1:${port}`,
  upstream: { host: '127.0.0.1', port: 1, database: 'app' },
  credentials: { type: 'static', username: 'app', password: '${env:NEVER_PRINTED_SECRET}' },
  allow_groups: ['dba'],
});

describe('airlock config check', () => {
  it('prints ok for a valid file', async () => {
    const r = await airlock(['config', 'check', '--config', configFile({ connections: [goodConnection(15999)] })]);
    expect(r.stdout).toBe('ok\n');
    expect(r.code).toBe(0);
  });

  it('prints each problem with its path and exits 2, never a secret', async () => {
    const c = goodConnection(15999);
    (c.upstream as Record<string, unknown>).port = 'x';
    const r = await airlock(['config', 'check', '--config', configFile({ connections: [c], bogus: true })]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('connections[0].upstream.port: expected a number');
    expect(r.stdout).toContain('(top level): unknown key "bogus"');
    expect(r.stdout).not.toContain('NEVER_PRINTED_SECRET');
  });

  it('with a shared state store, warns about keys that must be equal on every node unless they are secret references', async () => {
    const ssh = {
      name: 'box',
      protocol: 'ssh',
      listen: '127.0.0.1:15998',
      upstream: { host: '127.0.0.1', port: 1, host_key_fingerprint: `SHA256:${'A'.repeat(43)}` },
      credentials: { type: 'ssh-certificate', ca_key: '/etc/airlock/inline-ca' },
    };
    const fleet = { state: { backend: 'postgres', url: '${env:STATE_URL}' } };
    const r = await airlock(['config', 'check', '--config', configFile({ ...fleet, masking: { hash_key: 'inline-hash-key-value' }, connections: [goodConnection(15999), ssh] })]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok\n/);
    expect(r.stdout).toContain('warning: ssh_ca.key: not set');
    expect(r.stdout).toContain('warning: masking.hash_key: not a secret reference');
    expect(r.stdout).toContain('warning: connections[1].credentials.ca_key: not a secret reference');
    expect(r.stdout).toContain('warning: connections[1].host_key: not set');
    expect(r.stdout).toContain('warning: auth.token_signing_key: not set');
    expect(r.stdout).toContain('warning: audit.signing_key: not set');
    expect(r.stdout).not.toContain('inline-hash-key-value');
    // Secret references everywhere (the gateway-token and audit checkpoint keys too): nothing to warn about.
    const good = await airlock(['config', 'check', '--config', configFile({
      ...fleet,
      auth: { token_signing_key: '${file:/etc/airlock/token-key.jwk}' },
      audit: { signing_key: '${file:/etc/airlock/audit-signing.key}' },
      ssh_ca: { key: '${file:/etc/airlock/ssh-ca}' },
      masking: { hash_key: '${env:HASH_KEY}' },
      connections: [{ ...ssh, host_key: '${file:/etc/airlock/host-key}', credentials: { type: 'ssh-certificate', ca_key: '${file:/etc/airlock/up-ca}' } }],
    })]);
    expect(good.code).toBe(0);
    expect(good.stdout.split('\n').filter((l) => l.startsWith('warning:'))).toEqual([]);
    // The embedded store (one node): nothing to warn about.
    expect((await airlock(['config', 'check', '--config', configFile({ connections: [ssh] })])).stdout).toBe('ok\n');
  });

  it('reads AIRLOCK_CONFIG', async () => {
    const r = await airlock(['config', 'check'], { AIRLOCK_CONFIG: configFile({}) });
    expect(r.stdout).toBe('ok\n');
  });
});

describe('airlock audit keygen', () => {
  it('writes a private key (0600) and its public half, prints neither key, and never overwrites', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-keygen-'));
    const out = join(dir, 'audit-signing.key');
    const r = await airlock(['audit', 'keygen', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const privatePem = readFileSync(out, 'utf8');
    const publicPem = readFileSync(join(dir, 'audit-signing.pub'), 'utf8');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const key = createPrivateKey(privatePem);
    expect(key.asymmetricKeyType).toBe('ed25519');
    expect(createPublicKey(key).export({ type: 'spki', format: 'pem' })).toBe(publicPem);
    expect(r.stdout).toMatch(/key id [0-9a-f]{16}\n/);
    expect(r.stdout).toContain(`audit: { signing_key: "\${file:${out}}" }`);
    expect(r.stdout).toContain(`airlock audit verify --public-key ${join(dir, 'audit-signing.pub')}`);
    expect(r.stdout + r.stderr).not.toContain(privatePem.split('\n')[1]);
    expect(r.stdout + r.stderr).not.toContain(publicPem.split('\n')[1]);
    const again = await airlock(['audit', 'keygen', '--out', out]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`${out} exists; airlock never overwrites a key`);
    expect(readFileSync(out, 'utf8')).toBe(privatePem);
  });
});

describe('airlock token mint', () => {
  it('refuses when the dev issuer is off', async () => {
    const r = await airlock(['token', 'mint', '--config', configFile({}), '--sub', 'alice']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('dev_issuer');
  });

  it('prints a JWT when it is on', async () => {
    const r = await airlock(['token', 'mint', '--config', configFile({ auth: { dev_issuer: true } }), '--sub', 'alice', '--groups', 'dba,ci', '--ttl', '5m', '--kind', 'agent']);
    expect(r.code).toBe(0);
    const [, body] = r.stdout.trim().split('.');
    const claims = JSON.parse(Buffer.from(body ?? '', 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ sub: 'alice', groups: ['dba', 'ci'], airlock_kind: 'agent', iss: 'airlock-dev' });
  });
});

describe('airlock serve', () => {
  it('exits non-zero with one clear line when the config is invalid', async () => {
    const r = await airlock(['serve', '--config', configFile('connections: [{name: 1}]')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('connections[0]');
  });

  it('exits non-zero with one clear line when a port is taken', async () => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      const r = await airlock(['serve', '--config', configFile({ connections: [goodConnection(port)] })]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    } finally {
      blocker.close();
    }
  });
});
