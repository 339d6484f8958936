import type { AddressInfo } from 'node:net';
import type { Config, ConnectionConfig, RuleConfig } from '../config/index.js';
import type { Identity } from '../core/types.js';
import { mayUseConnection } from '../core/gateway.js';

/**
 * GET /v1/connections: what a caller may open and what policy says there — names and
 * addresses only, never an upstream address or credential.
 */
export function describeConnections(
  config: Config,
  caller: Identity,
  address: (name: string) => AddressInfo | undefined,
  rulesFor: (identity: Identity, connection: string) => RuleConfig[],
  /** The protocol's own facts (logins, host key, token header), from its adapter's describe(). */
  describe: (c: ConnectionConfig, caller: Identity) => ConnectionFacts = () => ({}),
): ConnectionSummary[] {
  return config.connections
    .filter((c) => mayUseConnection(caller, c))
    .map((c) => {
      const bound = address(c.name);
      const rules = rulesFor(caller, c.name);
      return {
        name: c.name,
        protocol: c.protocol,
        listen: { host: c.listen.host, port: bound?.port ?? c.listen.port },
        tls: 'tls' in c && c.tls !== undefined,
        ...describe(c, caller),
        rules: rules
          .filter((r) => r.effect !== 'mask')
          .map((r) => ({ name: r.name, effect: r.effect, ...(r.reason === undefined ? {} : { reason: r.reason }), when: r.when })),
        masked: rules
          .filter((r) => r.effect === 'mask')
          .map((r) => ({ rule: r.name, ...(r.columns === undefined ? {} : { columns: r.columns }), ...(r.detect === undefined ? {} : { detect: r.detect }), ...(r.json_paths === undefined ? {} : { json_paths: r.json_paths }), method: r.method ?? 'redact' })),
      };
    });
}

export interface ConnectionSummary {
  name: string;
  protocol: ConnectionConfig['protocol'];
  listen: { host: string; port: number };
  tls: boolean;
  /** SSH: the logins this caller may use. */
  logins?: string[];
  /** SSH: airlock's host key for this listener (SHA256:…), so clients need no trust on first use. */
  host_key_fingerprint?: string;
  /** HTTP: the header that carries the caller's token. */
  auth_header?: string;
  rules: Array<{ name: string; effect: string; reason?: string; when: RuleConfig['when'] }>;
  masked: Array<{ rule: string; columns?: string[]; detect?: string[]; json_paths?: string[]; method: string }>;
}

/** The part of a connection's summary its protocol adapter describes (ProtocolAdapter.describe). */
export type ConnectionFacts = Pick<ConnectionSummary, 'logins' | 'host_key_fingerprint' | 'auth_header'>;

