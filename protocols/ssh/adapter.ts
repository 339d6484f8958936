/** The ssh protocol as the daemon sees it (src/core/adapter.ts; listed in app/adapters.ts). */
import { wrongProtocol, type Listener, type ProtocolAdapter } from '../../src/core/adapter.js';
import type { ProtocolEvents } from '../../src/core/session-types.js';
import { sshConnection } from './config.js';
import { SshListener } from './listener.js';
import { execCommand } from './mcp.js';
import { SshCertificateLeases, SshStaticLeases } from '../../src/credentials/ssh-certificate.js';

declare module '../../src/core/session-types.js' {
  /** SSH: an exec's outcome, a shell recording, a forward, an SFTP operation. */
  interface ProtocolEvents {
    'ssh.exec': object;
    'ssh.recording': object;
    'ssh.forward': object;
    'ssh.sftp': object;
  }
}

export const sshAdapter = {
  protocol: 'ssh',
  connectionSchema: sshConnection,
  createListener: (core, config, context) => (config.protocol === 'ssh' ? (new SshListener(core, config, context) as Listener) : wrongProtocol('ssh', config)),
  eventKinds: ['ssh.exec', 'ssh.recording', 'ssh.forward', 'ssh.sftp'] satisfies Array<keyof ProtocolEvents>,
  mcp: { exec: execCommand },
  describe: (c, caller, facts) => {
    if (c.protocol !== 'ssh') return wrongProtocol('ssh', c);
    const logins = [...new Set(Object.entries(c.allowed_logins).filter(([g]) => g === '*' || caller.groups.includes(g)).flatMap(([, l]) => l))];
    return { logins, ...(facts.hostKey === undefined ? {} : { host_key_fingerprint: facts.hostKey }) };
  },
  leaseBroker: (c, deps) => {
    if (c.protocol !== 'ssh') return wrongProtocol('ssh', c);
    const cred = c.credentials;
    if (cred.type === 'ssh-certificate') return new SshCertificateLeases(deps.resolver, cred.ca_key, cred.ttl);
    return new SshStaticLeases(deps.resolver, cred.private_key, cred.password, cred.passphrase);
  },
} satisfies ProtocolAdapter<'ssh'>;
