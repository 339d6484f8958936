/**
 * The per-session upstream certificate against the real sshd, with airlock's own checks
 * out of the way (the lease and the ssh2 client only): the session's certificate permits
 * no pty and no port forwarding, so the target itself refuses them; a certificate of the
 * same key from `certify(['permit-pty'])` gets the pty. Regression for issue 27 item 3:
 * the certificate used to carry permit-pty and permit-port-forwarding for every session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ssh2 from 'ssh2';
import { SshCertificateLeases } from '../../src/credentials/ssh-certificate.js';
import { SecretResolver } from '../../src/secrets/index.js';
import { connectUpstream } from '../../protocols/ssh/upstream.js';
import { validateConfig } from '../../app/config.js';
import type { SshConnectionConfig } from '../../protocols/ssh/config.js';
import type { Lease } from '../../src/core/session-types.js';
import { startSshd, sshdAvailable, type SshServer } from '../harness/sshd.js';

const available = sshdAvailable();
let sshd: SshServer;
let config: SshConnectionConfig;
let lease: Lease;

beforeAll(async () => {
  if (!available) return;
  sshd = await startSshd();
  const doc = {
    connections: [{
      name: 'target', protocol: 'ssh', listen: '127.0.0.1:1',
      upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
      credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}`, ttl: '5m' },
    }],
  };
  const parsed = validateConfig(doc);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  config = parsed.config.connections[0] as SshConnectionConfig;
  const broker = new SshCertificateLeases(new SecretResolver(), `\${file:${sshd.caKeyFile}}`, 300_000);
  lease = await broker.acquire({ sessionId: 's1', identity: { subject: 'ci-bot', issuer: 'test', groups: ['ci'], kind: 'machine', expiresAt: Date.now() + 600_000 }, login: sshd.user });
}, 60_000);

afterAll(async () => {
  if (available) await sshd?.stop();
});

/** Runs `tty` with a pty requested; what the target printed, or the error it refused with. */
function ttyOver(client: ssh2.Client): Promise<{ out: string; error: string | null }> {
  return new Promise((resolve) => {
    client.exec('tty', { pty: { rows: 24, cols: 80, term: 'xterm' } }, (err, ch) => {
      if (err) return resolve({ out: '', error: err.message });
      let out = '';
      ch.on('data', (d: Buffer) => (out += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (out += d.toString()));
      ch.on('close', () => resolve({ out, error: null }));
    });
  });
}

function forwardOver(client: ssh2.Client): Promise<string | null> {
  return new Promise((resolve) => {
    client.forwardOut('127.0.0.1', 1, '127.0.0.1', sshd.port, (err, ch) => {
      if (err) return resolve(err.message);
      ch.close();
      resolve(null);
    });
  });
}

describe.skipIf(!available)('the upstream certificate permits only what policy allowed', () => {
  it('the session certificate: commands run, but sshd refuses a pty and a port forward', async () => {
    const listing = lease.certificate ?? '';
    expect(listing).not.toBe('');
    const client = await connectUpstream({ config, lease, login: sshd.user });
    try {
      const r = await ttyOver(client);
      // OpenSSH refuses the pty-req (ssh2 reports it as an error) or runs without one.
      expect(r.error !== null || /not a tty/.test(r.out)).toBe(true);
      expect(r.out).not.toMatch(/\/dev\/pts\//);
      expect(await forwardOver(client)).not.toBeNull();
      expect(sshd.log()).toMatch(/airlock:ci-bot:s1/);
    } finally {
      client.end();
    }
  });

  it('certify([permit-pty]) signs the same key anew: that connection gets its pty', async () => {
    const certificate = await lease.certify?.(['permit-pty']);
    expect(certificate).toBeDefined();
    const client = await connectUpstream({ config, lease, login: sshd.user, ...(certificate === undefined ? {} : { certificate }) });
    try {
      const r = await ttyOver(client);
      expect(r.error).toBeNull();
      expect(r.out).toMatch(/\/dev\/pts\//);
      // Still no port forwarding on it.
      expect(await forwardOver(client)).not.toBeNull();
    } finally {
      client.end();
    }
  });

  it('certify refuses a permission it does not know', async () => {
    await expect(lease.certify?.(['permit-everything'])).rejects.toThrow(/not a certificate permission/);
  });
});
