/**
 * SSH listener — placeholder until the adapter lands: every connection is
 * refused with a clear log line (fail closed), nothing is forwarded.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { GatewayCore } from '../../src/session-types.js';
import type { SshConnectionConfig } from '../../src/config.js';

export class SshListener {
  private readonly server: Server;
  constructor(private readonly core: GatewayCore, private config: SshConnectionConfig, readonly context: { readonly stateDir: string }) {
    this.server = createServer((s) => {
      this.core.logger.error({ connection: this.config.name }, 'ssh connections are not supported yet');
      s.destroy();
    });
  }
  get name(): string {
    return this.config.name;
  }
  readonly sessionCount = 0;
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.listen.port, this.config.listen.host, () => resolve(this.server.address() as AddressInfo));
    });
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
  update(config: SshConnectionConfig): void {
    this.config = config;
  }
}
