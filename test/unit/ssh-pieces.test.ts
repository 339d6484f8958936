/** SSH gateway pieces (issue 8): certificates ssh-keygen reads, known_hosts, SFTP framing and paths. */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createHmac, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import sshpk from 'sshpk';
import { generateEd25519, signUserCertificate, verifyCallerCertificate } from '../../src/auth/ssh-certs.js';
import { knownHostsAccepts, fingerprintOf } from '../../protocols/ssh/upstream.js';
import { SftpFramer, absolutePath, describeRequest, statusPacket, SFTP } from '../../protocols/ssh/sftp.js';

const dir = mkdtempSync(join(tmpdir(), 'airlock-ssh-unit-'));

describe('certificates', () => {
  const ca = sshpk.parsePrivateKey(generateEd25519().privateKey, 'ssh');
  const subject = generateEd25519();
  const identity = { subject: 'alice', issuer: 'https://idp', groups: ['dba', 'ops'], kind: 'human' as const, expiresAt: Date.now() + 3_600_000 };
  const cert = signUserCertificate({ ca, subjectKey: subject.publicKey, principals: ['deploy'], keyId: 'airlock:alice:s1', validFrom: new Date(Date.now() - 60_000), validUntil: new Date(Date.now() + 300_000), permissions: ['permit-pty', 'permit-port-forwarding'], identity });

  it('ssh-keygen -L reads what airlock signs: user certificate, key id, principal, extensions', () => {
    const file = join(dir, 'c-cert.pub');
    writeFileSync(file, `${cert.toString('openssh')}\n`);
    const out = execFileSync('ssh-keygen', ['-L', '-f', file], { encoding: 'utf8' });
    expect(out).toContain('ssh-ed25519-cert-v01@openssh.com user certificate');
    expect(out).toContain('Key ID: "airlock:alice:s1"');
    expect(out).toMatch(/Principals:\s+deploy/);
    expect(out).toContain('permit-pty');
    expect(out).toContain('permit-port-forwarding');
  });

  it('a caller certificate carries the identity; another CA, an edit or expiry is refused', () => {
    const blob = Buffer.from(cert.toString('openssh').split(' ')[1] ?? '', 'base64');
    expect(verifyCallerCertificate(blob, ca.toPublic()).identity).toMatchObject({ subject: 'alice', groups: ['dba', 'ops'], kind: 'human' });
    const other = sshpk.parsePrivateKey(generateEd25519().privateKey, 'ssh');
    expect(() => verifyCallerCertificate(blob, other.toPublic())).toThrow(/bad signature/);
    const edited = Buffer.from(blob);
    const at = edited.indexOf(Buffer.from('"ops"'));
    edited.write('"adm"', at);
    expect(() => verifyCallerCertificate(edited, ca.toPublic())).toThrow();
    expect(() => verifyCallerCertificate(blob, ca.toPublic(), new Date(Date.now() + 600_000))).toThrow(/expired/);
  });

  it('a forged certificate that names airlock\'s CA as its signer but was signed by another key is refused', () => {
    // sshpk's isSignedByKey compares only the named signer key; airlock checks the signature.
    const mallory = sshpk.parsePrivateKey(generateEd25519().privateKey, 'ssh');
    const forged = signUserCertificate({ ca: mallory, subjectKey: subject.publicKey, principals: ['root'], keyId: 'x', validFrom: new Date(Date.now() - 60_000), validUntil: new Date(Date.now() + 300_000), permissions: [], identity: { ...identity, groups: ['admins'] } });
    const blob = Buffer.from(forged.toString('openssh').split(' ')[1] ?? '', 'base64');
    const theirs = mallory.toPublic().toBuffer('rfc4253');
    const ours = ca.toPublic().toBuffer('rfc4253');
    const at = blob.indexOf(theirs);
    expect(at).toBeGreaterThan(0);
    ours.copy(blob, at);
    expect(() => verifyCallerCertificate(blob, ca.toPublic())).toThrow(/bad signature/);
  });

  it('refuses an RSA CA (sshd rejects SHA-1 certificate signatures)', () => {
    const { privateKey } = require('node:crypto').generateKeyPairSync('rsa', { modulusLength: 2048 }) as { privateKey: import('node:crypto').KeyObject };
    const rsa = sshpk.parsePrivateKey(privateKey.export({ format: 'pem', type: 'pkcs1' }).toString(), 'pem');
    expect(() => signUserCertificate({ ca: rsa, subjectKey: subject.publicKey, principals: ['x'], keyId: 'k', validFrom: new Date(), validUntil: new Date(Date.now() + 1000), permissions: [] })).toThrow(/Ed25519/);
  });

  it('ssh2 carries airlock\'s certificate-signature fix (patches/ssh2+1.17.0.patch, applied by postinstall)', () => {
    const req = createRequire(import.meta.url);
    const source = readFileSync(join(req.resolve('ssh2/package.json'), '..', 'lib/protocol/Protocol.js'), 'utf8');
    expect(source).toContain("const sigAlgo = keyAlgo.replace(/-cert-v0[01]@openssh\\.com$/, '');");
  });
});

const require = createRequire(import.meta.url);

describe('known_hosts', () => {
  const key = randomBytes(51);
  const b64 = key.toString('base64');
  it('plain and [host]:port names, hashed names, @revoked', () => {
    expect(knownHostsAccepts(`[127.0.0.1]:2222 ssh-ed25519 ${b64}\n`, '127.0.0.1', 2222, key)).toBe(true);
    expect(knownHostsAccepts(`127.0.0.1 ssh-ed25519 ${b64}\n`, '127.0.0.1', 2222, key)).toBe(false);
    expect(knownHostsAccepts(`web1,10.0.0.1 ssh-ed25519 ${b64}\n`, 'web1', 22, key)).toBe(true);
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[db]:2200').digest('base64')}`;
    expect(knownHostsAccepts(`${hashed} ssh-ed25519 ${b64}\n`, 'db', 2200, key)).toBe(true);
    expect(knownHostsAccepts(`@revoked * ssh-ed25519 ${b64}\n[127.0.0.1]:2222 ssh-ed25519 ${b64}\n`, '127.0.0.1', 2222, key)).toBe(false);
    expect(fingerprintOf(key)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe('SFTP', () => {
  const str = (s: string): Buffer => {
    const b = Buffer.from(s);
    const l = Buffer.alloc(4);
    l.writeUInt32BE(b.length);
    return Buffer.concat([l, b]);
  };
  const packet = (type: number, id: number, ...parts: Buffer[]): Buffer => {
    const body = Buffer.concat([Buffer.from([type]), Buffer.from([0, 0, 0, id]), ...parts]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    return Buffer.concat([len, body]);
  };
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };

  it('frames packets split at every byte', () => {
    const stream = Buffer.concat([packet(SFTP.REMOVE, 1, str('/a')), packet(SFTP.MKDIR, 2, str('/b'), u32(0))]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const f = new SftpFramer();
      const got: number[] = [];
      f.push(stream.subarray(0, cut), (p) => got.push(p[4] ?? 0));
      f.push(stream.subarray(cut), (p) => got.push(p[4] ?? 0));
      expect(got).toEqual([SFTP.REMOVE, SFTP.MKDIR]);
    }
  });

  it('names operations on resolved paths; relative paths and .. cannot escape a rule', () => {
    const home = (p: string): string => absolutePath(p, '/home/u');
    expect(describeRequest(packet(SFTP.OPEN, 7, str('x.txt'), u32(0x1a), u32(0)), home)?.ops).toEqual([{ op: 'write', path: '/home/u/x.txt' }]);
    expect(describeRequest(packet(SFTP.OPEN, 7, str('../../etc/passwd'), u32(0x01), u32(0)), home)?.ops).toEqual([{ op: 'read', path: '/etc/passwd' }]);
    expect(describeRequest(packet(SFTP.RENAME, 8, str('/tmp/a'), str('/etc/b')), home)?.ops).toEqual([{ op: 'rename', path: '/tmp/a' }, { op: 'rename', path: '/etc/b' }]);
    expect(describeRequest(packet(SFTP.EXTENDED, 9, str('posix-rename@openssh.com'), str('a'), str('/etc/c')), home)?.ops[1]).toEqual({ op: 'rename', path: '/etc/c' });
    expect(absolutePath('a/../../../../etc/x', null)).toBe('/etc/x');
  });

  it('a STATUS reply in the server\'s place', () => {
    const p = statusPacket(42, 3, 'denied');
    expect(p.readUInt32BE(0)).toBe(p.length - 4);
    expect(p[4]).toBe(SFTP.STATUS);
    expect(p.readUInt32BE(5)).toBe(42);
    expect(p.readUInt32BE(9)).toBe(3);
  });
});
