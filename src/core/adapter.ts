/**
 * What one protocol folder gives the daemon (protocols/<p>/adapter.ts): its connection
 * schema, its listener factory, the session event kinds it records and its lease broker. app/adapters.ts
 * lists them; adding a protocol is one folder and one line there.
 */
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';
import type { ConnectionConfig } from '../config/index.js';
import type { SshCa } from '../auth/ssh-ca.js';
import { AirlockError } from '../util/errors.js';
import type { GatewayCore } from './session-types.js';
import type { LeaseBrokerFactory } from '../credentials/brokers.js';
import type { ConnectionFacts } from '../admin/connections.js';
import type { Identity } from './types.js';
import type { McpBackend } from '../mcp/backends/types.js';

/** Daemon-wide facts a listener may need besides the core (state_dir for generated host keys, the logger). */
export interface ListenerContext {
  readonly stateDir: string;
  /** airlock's SSH user CA (callers' certificates), loaded on first use. */
  readonly sshCa: () => Promise<SshCa>;
  readonly resolveSecret: (ref: string) => Promise<string>;
}

export interface Listener {
  readonly name: string;
  listen(): Promise<AddressInfo>;
  close(drainMs: number): Promise<void>;
  update(config: ConnectionConfig): void;
  readonly sessionCount: number;
  /** The host key callers verify (SSH), for GET /v1/connections. */
  readonly hostKeyFingerprint?: string;
}

export interface ProtocolAdapter<P extends ConnectionConfig['protocol'] = ConnectionConfig['protocol']> {
  readonly protocol: P;
  /** This protocol's connection schema, a zod object discriminated on `protocol`. */
  readonly connectionSchema: z.ZodType<Extract<ConnectionConfig, { protocol: P }>, unknown>;
  /** The listener for one connection (the daemon hands it only connections naming this protocol). */
  createListener(core: GatewayCore, config: ConnectionConfig, context: ListenerContext): Listener;
  /** The SessionEvent types this protocol records besides the core's (result, notice, protocol). */
  readonly eventKinds: readonly string[];
  /** The lease broker for one connection's credentials (static, ephemeral, certificates, computed headers). */
  readonly leaseBroker: LeaseBrokerFactory;
  /** What GET /v1/connections tells this caller of the connection besides name, address and policy. */
  /** What this protocol lends the MCP tools (query, exec, request). */
  readonly mcp: McpBackend;
  describe(config: ConnectionConfig, caller: Identity, facts: { readonly hostKey: string | undefined }): ConnectionFacts;
}

/** A connection handed to the wrong adapter: a bug in the composition root, never a caller's doing. */
export function wrongProtocol(adapter: string, config: ConnectionConfig): never {
  throw new AirlockError('AIRLOCK_INTERNAL', `the ${adapter} adapter was handed a ${config.protocol} connection`);
}
