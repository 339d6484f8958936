/**
 * SFTP flow control on refusals (issue 27): a request airlock refuses is answered by
 * airlock itself, so a caller that pipelines refused requests and never reads the replies
 * must be stopped — airlock stops reading its requests while the caller's channel is full —
 * instead of having its replies buffered in the daemon without bound. Real daemon, real
 * sshd, ssh2's client channel to the sftp subsystem with packets written by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { auditEvents } from '../harness/files.js';
import { startSshd, sshdAvailable, type SshServer } from '../harness/sshd.js';

const available = sshdAvailable();
let sshd: SshServer;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let port = 0;
let token = '';
const stamp = `${process.pid}-${Date.now()}`;
const guarded = `/tmp/airlock-flow-${stamp}`;
/** A long reason makes each refusal ~2 KiB, so a few thousand fill the channel's windows. */
const REASON = `nothing is created here ${'.'.repeat(2000)}`;

beforeAll(async () => {
  if (!available) return;
  issuer = await createTestIssuer();
  sshd = await startSshd();
  mkdirSync(guarded, { recursive: true });
  chmodSync(guarded, 0o777);
  port = await freePort();
  airlock = await startAirlock({
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [{
      name: 'web1',
      protocol: 'ssh',
      listen: `127.0.0.1:${port}`,
      upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
      credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}`, ttl: '5m' },
      allow_groups: ['agents'],
      allowed_logins: { '*': [sshd.user] },
    }],
    rules: [
      { name: 'guarded', when: { sftp: { ops: ['mkdir'], paths: [`${guarded}/**`] } }, effect: 'deny', reason: REASON },
    ],
  });
  token = await issuer.token({ sub: 'claude', groups: ['agents'], airlock_kind: 'agent' });
}, 120_000);

afterAll(async () => {
  if (!available) return;
  await airlock?.stop();
  await sshd?.stop();
  rmSync(guarded, { recursive: true, force: true });
});

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const str = (s: string): Buffer => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
const sftpPacket = (type: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat([Buffer.from([type]), ...parts]);
  return Buffer.concat([u32(body.length), body]);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!available)('refused SFTP requests and a caller that does not read', () => {
  it('airlock stops taking requests while the replies are unread; once read, every request has its refusal, in order, and its audit event', async () => {
    const N = 20_000;
    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.connect({ host: '127.0.0.1', port, username: sshd.user, password: token, hostVerifier: () => true });
    });
    try {
      const ch = await new Promise<ClientChannel>((resolve, reject) => client.subsys('sftp', (err, c) => (err ? reject(err) : resolve(c))));
      // INIT, and its VERSION read; from then on the caller reads nothing.
      ch.write(sftpPacket(1, u32(3)));
      const version = await new Promise<Buffer>((resolve) => ch.once('data', resolve));
      expect(version[4]).toBe(2);
      ch.pause();

      // MKDIR (14) of a ~1 KiB name under the guarded directory: each is refused by airlock.
      const name = 'd'.repeat(1000);
      let sent = 0;
      for (let id = 1; id <= N; id++) {
        ch.write(sftpPacket(14, u32(id), str(`${guarded}/${name}-${id}`), u32(0)), () => sent++);
      }
      // Wait until airlock stops: no more requests leave the client (ssh2 sends only within
      // the channel window airlock grants) and no more refusals are judged. Old behaviour:
      // airlock kept reading every request and buffered every refusal, so all N left.
      const denied = (): number => auditEvents(join(airlock.stateDir, 'audit')).filter((e) => e.type === 'ssh.sftp' && e.decision === 'deny').length;
      let last = '';
      for (let still = 0; still < 8 && sent < N;) {
        await sleep(500);
        const now = `${sent}/${denied()}`;
        still = now === last ? still + 1 : 0;
        last = now;
      }
      expect(sent).toBeLessThan(N);
      expect(denied()).toBeLessThan(N);
      // What is still unsent waits on the window airlock does not reopen.
      expect((ch as unknown as { outgoing: { window: number } }).outgoing.window).toBeLessThan(64 * 1024);

      // The caller reads: every request gets its refusal, in order.
      let buf = Buffer.alloc(0);
      const ids: number[] = [];
      let bad = 0;
      let wake: (() => void) | null = null;
      ch.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const p = buf.subarray(0, 4 + buf.readUInt32BE(0));
          buf = buf.subarray(p.length);
          if (p[4] !== 101 || p.readUInt32BE(9) !== 3 || !p.includes(Buffer.from('denied by rule guarded'))) bad++;
          ids.push(p.readUInt32BE(5));
        }
        wake?.();
      });
      ch.resume();
      while (ids.length < N) await new Promise<void>((r) => { wake = r; });
      expect(sent).toBe(N);
      expect(bad).toBe(0);
      expect(ids).toEqual(Array.from({ length: N }, (_, i) => i + 1));

      // Each refusal is an audit event.
      let audited = 0;
      for (let i = 0; i < 300; i++) {
        audited = auditEvents(join(airlock.stateDir, 'audit')).filter((e) => e.type === 'ssh.sftp' && e.decision === 'deny' && e.op === 'mkdir' && e.rule === 'guarded').length;
        if (audited >= N) break;
        await sleep(200);
      }
      expect(audited).toBe(N);
    } finally {
      client.end();
    }
  }, 240_000);
});
