/** The ssh protocol as the daemon sees it (src/core/adapter.ts; listed in app/adapters.ts). */
import { wrongProtocol, type Listener, type ProtocolAdapter } from '../../src/core/adapter.js';
import { sshConnection } from './config.js';
import { SshListener } from './listener.js';

export const sshAdapter = {
  protocol: 'ssh',
  connectionSchema: sshConnection,
  createListener: (core, config, context) => (config.protocol === 'ssh' ? (new SshListener(core, config, context) as Listener) : wrongProtocol('ssh', config)),
  eventKinds: ['ssh.exec', 'ssh.recording', 'ssh.forward', 'ssh.sftp'],
} satisfies ProtocolAdapter<'ssh'>;
