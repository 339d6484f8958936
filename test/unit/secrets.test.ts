import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret, SecretResolver } from '../../src/secrets/index.js';
import { createLogger } from '../../src/util/log.js';
import { Writable } from 'node:stream';

describe('Secret', () => {
  const s = new Secret('hunter2-value');
  it('redacts itself in every printed form', () => {
    expect(String(s)).toBe('[secret]');
    expect(`${s}`).toBe('[secret]');
    expect(JSON.stringify({ s })).toBe('{"s":"[secret]"}');
    expect(inspect({ s })).not.toContain('hunter2');
    expect(s.reveal()).toBe('hunter2-value');
  });
  it('is redacted in pino log lines', () => {
    let out = '';
    const sink = new Writable({ write(c: Buffer, _e, cb) { out += c.toString(); cb(); } });
    const log = createLogger('info', sink);
    log.info({ lease: { secret: s, other: s }, password: 'raw-password' }, 'x');
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('raw-password');
  });
});

describe('SecretResolver', () => {
  it('resolves env and file references, whole or embedded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-secret-'));
    const f = join(dir, 'pw');
    writeFileSync(f, 'from-file\n');
    chmodSync(f, 0o644);
    const warnings: string[] = [];
    const r = new SecretResolver({ env: { K: 'from-env' }, warn: (m) => warnings.push(m) });
    expect((await r.resolve('${env:K}')).reveal()).toBe('from-env');
    expect((await r.resolve('Bearer ${env:K}')).reveal()).toBe('Bearer from-env');
    expect((await r.resolve(`\${file:${f}}`)).reveal()).toBe('from-file');
    expect(warnings.join()).toContain('world-readable');
    await expect(r.resolve('${env:MISSING}')).rejects.toMatchObject({ code: 'AIRLOCK_SECRET_UNRESOLVED' });
    await expect(r.resolve('${nope:x}')).rejects.toMatchObject({ code: 'AIRLOCK_SECRET_UNRESOLVED' });
  });
});
