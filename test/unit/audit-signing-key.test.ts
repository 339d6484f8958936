/**
 * audit.signing_key (issue 18): a checkpoint key shared by every node, from a secret reference;
 * `audit verify` against pinned public keys (authorship) rather than the .pub beside the log
 * (consistency only); `config check` warns on a fleet without it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfigText, validateConfig } from '../../app/config.js';
import { fleetWarnings } from '../../src/state/fleet-check.js';
import { SecretResolver } from '../../src/secrets/index.js';
import { AirlockError } from '../../src/util/errors.js';
import { checkpointKeyFromText, keyId, loadCheckpointKey } from '../../src/audit/signing.js';
import { pinnedKeys } from '../../src/audit/verify-keys.js';
import { auditVerifyCommand, verifyAudit, type AuditRecord } from '../../src/audit/index.js';
import { action, auditFiles, forgeLog, openLog, readLinesOf, tempState, type TempState } from '../../src/audit/testing.js';

let t: TempState;
beforeEach(async () => {
  t = await tempState();
});
afterEach(async () => {
  await t.cleanup();
});

function ed25519(): { privatePem: string; publicPem: string; privateKey: KeyObject; id: string } {
  const pair = generateKeyPairSync('ed25519');
  return {
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: pair.privateKey,
    id: keyId(pair.publicKey),
  };
}

/** The base64 body of a PEM: what must never show in a message. */
const bodyOf = (pem: string): string => pem.split('\n')[1] ?? 'unreachable';

async function errorOf(f: () => unknown): Promise<AirlockError> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(AirlockError);
    return e as AirlockError;
  }
  throw new Error('expected an error');
}

async function writeLog(n: number, opts: Parameters<typeof openLog>[1]): Promise<void> {
  const log = await openLog(t.dir, opts);
  for (let i = 0; i < n; i++) await log.append(action('s1', `SELECT ${i}`));
  await log.close();
}

async function pubFile(name: string, pem: string): Promise<string> {
  const file = join(t.state, name);
  await writeFile(file, pem);
  return file;
}

/** Rewrites the whole log with an edit at seq 2, every checkpoint re-signed with `key`. */
function resign(key: { privateKey: KeyObject; id: string }): Promise<void> {
  return forgeLog(t.dir, key.privateKey, key.id, (r) => (r.seq === 2 ? { ...r.event, action: { kind: 'sql', text: 'SELECT nothing happened' } } : r.event));
}

describe('audit.signing_key in the config', () => {
  it('is an optional string; an empty one is a config problem', () => {
    const ok = validateConfig({ audit: { signing_key: '${file:/etc/airlock/audit-signing.key}' } });
    expect(ok.ok && ok.config.audit.signing_key).toBe('${file:/etc/airlock/audit-signing.key}');
    expect(validateConfig({}).ok && (validateConfig({}) as { ok: true; config: { audit: { signing_key?: string } } }).config.audit.signing_key).toBeUndefined();
    const bad = parseConfigText('audit: { signing_key: "" }\n');
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.problems.map((p) => p.path)).toContain('audit.signing_key');
  });

  it('accepts an Ed25519 PKCS#8 PEM (or JWK) and refuses anything else by what it is, never quoting it', async () => {
    const k = ed25519();
    expect(keyId(checkpointKeyFromText(k.privatePem))).toBe(k.id);
    expect(keyId(checkpointKeyFromText(JSON.stringify(k.privateKey.export({ format: 'jwk' }))))).toBe(k.id);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const encrypted = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString();
    const cases: Array<[string, string, RegExp]> = [
      ['public key', k.publicPem, /this is a public key/],
      ['rsa', rsa, /this is a rsa key/],
      ['encrypted', encrypted, /encrypted/],
      ['garbage', `-----BEGIN PRIVATE KEY-----\n${bodyOf(k.privatePem).slice(0, 20)}\n-----END PRIVATE KEY-----\n`, /not a private key/],
      ['plain text', 'hunter2-not-a-key', /not a private key/],
    ];
    for (const [name, text, why] of cases) {
      const e = await errorOf(() => checkpointKeyFromText(text));
      expect(e.code, name).toBe('AIRLOCK_CONFIG_INVALID');
      expect(e.message, name).toMatch(/^audit\.signing_key: /);
      expect(e.message, name).toMatch(why);
      expect(e.message, name).toContain('Ed25519 private key as PKCS#8 PEM');
      for (const secret of [bodyOf(text), 'hunter2', bodyOf(k.privatePem).slice(0, 20)]) if (secret !== '') expect(e.message).not.toContain(secret);
    }
  });

  it('an unreadable reference is a config error naming the setting and the file, not a value', async () => {
    const e = await errorOf(() => loadCheckpointKey(`\${file:${join(t.state, 'missing.key')}}`, new SecretResolver()));
    expect(e.code).toBe('AIRLOCK_CONFIG_INVALID');
    expect(e.message).toBe(`audit.signing_key: secret file ${join(t.state, 'missing.key')} cannot be read`);
    const k = ed25519();
    const file = await pubFile('shared.key', k.privatePem);
    expect(keyId(await loadCheckpointKey(`\${file:${file}}`, new SecretResolver()))).toBe(k.id);
  });

  it('config check warns on a shared state store when it is not set or not a secret reference', () => {
    const fleet = { state: { backend: 'postgres', url: '${env:STATE_URL}' } };
    const warningsFor = (doc: Record<string, unknown>): string[] => {
      const r = validateConfig(doc);
      if (!r.ok) throw new Error(JSON.stringify(r.problems));
      return fleetWarnings(r.config).filter((w) => w.path === 'audit.signing_key').map((w) => w.message);
    };
    expect(warningsFor(fleet)).toEqual([expect.stringMatching(/^not set: each node generates its own audit checkpoint key.*airlock audit keygen/)]);
    const literal = ed25519().privatePem;
    const inline = warningsFor({ ...fleet, audit: { signing_key: literal } });
    expect(inline).toEqual([expect.stringMatching(/^not a secret reference/)]);
    expect(inline.join('')).not.toContain(bodyOf(literal));
    expect(warningsFor({ ...fleet, audit: { signing_key: '${file:/etc/airlock/audit-signing.key}' } })).toEqual([]);
    // One node (the embedded store), or no audit at all: nothing to share.
    expect(warningsFor({})).toEqual([]);
    expect(warningsFor({ ...fleet, audit: { enabled: false } })).toEqual([]);
  });
});

describe('checkpoints signed with the configured key', () => {
  it('carry its key id; its public half is written beside the log; no per-node key is made', async () => {
    const k = ed25519();
    await writeLog(5, { checkpointEvery: 2, signingKey: k.privateKey });
    const records = (await readLinesOf((await auditFiles(t.dir))[0] ?? '')).map((l) => JSON.parse(l) as AuditRecord);
    const keys = records.filter((r) => r.event.type === 'checkpoint').map((r) => (r.event as { key?: string }).key);
    expect(keys.length).toBeGreaterThan(1);
    expect(new Set(keys)).toEqual(new Set([k.id]));
    expect(await readFile(join(t.state, 'audit-signing.pub'), 'utf8')).toBe(k.publicPem);
    await expect(access(join(t.state, 'audit-signing.key'))).rejects.toThrow(/ENOENT/);
    // The old path (the .pub beside the log) and the pinned key both verify it.
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: true });
    const pinned = await pinnedKeys([await pubFile('pinned.pub', k.publicPem)]);
    expect(await verifyAudit(t.dir, { keys: pinned })).toMatchObject({ ok: true });
  });

  it('a log re-signed with another key passes plain verify (its .pub was rewritten too) but fails against the pinned key', async () => {
    const k = ed25519();
    await writeLog(5, { checkpointEvery: 2, signingKey: k.privateKey });
    const forger = ed25519();
    await resign(forger);
    await writeFile(join(t.state, 'audit-signing.pub'), forger.publicPem);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: true });
    const r = await auditVerifyCommand(t.dir, { keys: await pinnedKeys([await pubFile('pinned.pub', k.publicPem)]) });
    expect(r.exitCode).toBe(1);
    expect(r.text).toContain(`:2: checkpoint is signed by key ${forger.id}, which is not a pinned key (expected ${k.id}, from ${join(t.state, 'pinned.pub')})`);
  });

  it('a forged signature under the pinned key id fails as an invalid signature', async () => {
    const k = ed25519();
    await writeLog(3, { checkpointEvery: 2, signingKey: k.privateKey });
    const forger = ed25519();
    await resign({ privateKey: forger.privateKey, id: k.id });
    const r = await verifyAudit(t.dir, { keys: await pinnedKeys([await pubFile('pinned.pub', k.publicPem)]) });
    expect(r).toMatchObject({ ok: false, line: 2, problem: 'checkpoint signature is not valid' });
  });

  it('after a switch from the per-node key: plain verify still passes (the old .pub is kept), pinned needs both keys (a rotation)', async () => {
    await writeLog(3, { checkpointEvery: 2 });
    const perNode = await readFile(join(t.state, 'audit-signing.pub'), 'utf8');
    const k = ed25519();
    await writeLog(3, { checkpointEvery: 2, signingKey: k.privateKey });
    expect(await readFile(join(t.state, 'audit-signing.pub'), 'utf8')).toBe(k.publicPem);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: true });
    const onlyNew = await auditVerifyCommand(t.dir, { keys: await pinnedKeys([await pubFile('new.pub', k.publicPem)]) });
    expect(onlyNew.exitCode).toBe(1);
    expect(onlyNew.text).toMatch(/:2: checkpoint is signed by key [0-9a-f]{16}, which is not a pinned key/);
    // Both keys: in two files, or both in one.
    const both = await auditVerifyCommand(t.dir, { keys: await pinnedKeys([await pubFile('old.pub', perNode), join(t.state, 'new.pub')]) });
    expect(both).toMatchObject({ exitCode: 0, text: expect.stringMatching(/^ok \d+ events; every checkpoint signed by a pinned key, the last at seq \d+ \(key [0-9a-f]{16}\)\n$/) });
    const bundle = await auditVerifyCommand(t.dir, { keys: await pinnedKeys([await pubFile('both.pem', `${perNode}${k.publicPem}`)]) });
    expect(bundle.exitCode).toBe(0);
  });

  it('with a pinned key, a log with no checkpoint fails and records after the last one are named as unsigned', async () => {
    const k = ed25519();
    const pinned = await pinnedKeys([await pubFile('pinned.pub', k.publicPem)]);
    await writeLog(3, { checkpointEvery: 0 });
    const none = await auditVerifyCommand(t.dir, { keys: pinned });
    expect(none.exitCode).toBe(1);
    expect(none.text).toBe(`${t.dir}: no checkpoint in the log, so no pinned key vouches for any of its 3 records (airlock writes one every audit.checkpoint_every records and when it stops)\n`);
    // Without pinned keys the same log is fine: the chain is consistent.
    expect(await auditVerifyCommand(t.dir)).toEqual({ exitCode: 0, text: 'ok 3 events\n' });
    await t.cleanup();
    t = await tempState();
    const log = await openLog(t.dir, { checkpointEvery: 4, signingKey: k.privateKey });
    for (let i = 0; i < 5; i++) await log.append(action('s1', `SELECT ${i}`));
    // Not closed: no sealing checkpoint yet; seq 4 is the checkpoint, seq 5 and 6 follow it.
    const live = await auditVerifyCommand(t.dir, { keys: pinned });
    expect(live).toEqual({ exitCode: 0, text: `ok 6 events; every checkpoint signed by a pinned key, the last at seq 4 (key ${k.id}); the 2 records after it are not signed yet\n` });
    await log.close();
  });
});

describe('--public-key files', () => {
  it('refuses a private key without echoing it, a non-Ed25519 key, a file with no key, a missing file', async () => {
    const k = ed25519();
    const rsaPub = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const cases: Array<[string, string | null, RegExp]> = [
      ['private.key', k.privatePem, /holds a private key; give its public half/],
      ['rsa.pub', rsaPub, /holds a rsa key; checkpoints are signed with Ed25519/],
      ['empty.pub', 'nothing here\n', /no PEM public key/],
      ['missing.pub', null, /cannot be read \(ENOENT\)/],
    ];
    for (const [name, text, why] of cases) {
      const file = text === null ? join(t.state, name) : await pubFile(name, text);
      const e = await errorOf(() => pinnedKeys([file]));
      expect(e.code, name).toBe('AIRLOCK_CONFIG_INVALID');
      expect(e.message, name).toMatch(new RegExp(`^--public-key ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
      expect(e.message, name).toMatch(why);
      expect(e.message).not.toContain(bodyOf(k.privatePem));
    }
  });
});
