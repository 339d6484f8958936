/**
 * Which lease broker serves a connection: one place that maps (protocol, credentials.type)
 * to a broker, so the gateway stays protocol-neutral.
 */
import type { ConnectionConfig } from '../config/index.js';
import type { Logger } from '../util/log.js';
import type { Identity } from '../core/types.js';
import type { Lease } from '../core/session-types.js';
import { Secret, type SecretResolver } from '../secrets/index.js';
import { StaticLeases, type LeaseBroker, type LeaseRequest } from './lease.js';
import { EphemeralPgLeases } from './ephemeral-pg.js';
import { SshCertificateLeases, SshStaticLeases } from './ssh-certificate.js';
import { EphemeralMysqlLeases } from './ephemeral-mysql.js';
import type { Sweepable } from './sweeper.js';

export interface BrokerDeps {
  resolver: SecretResolver;
  logger: Logger;
  /** This node's id (nodeId(state_dir)), computed on first use. */
  nodeId: () => string;
  stateDir: string;
  /** Signs a short-lived JWT with airlock's own key (HTTP `credentials.type: jwt`). */
  signJwt: (claims: { identity: Identity; sessionId: string; audience: string; ttlMs: number }) => Promise<string>;
}

/** A broker that keeps state worth keeping across a reload (a warm admin pool) says so with a key. */
export interface KeyedBroker extends LeaseBroker {
  readonly reuseKey?: string;
}

export function isSweepable(b: LeaseBroker): b is LeaseBroker & Sweepable {
  return typeof (b as Partial<Sweepable>).sweep === 'function';
}

/** A lease whose `secret` is made per session by a function (HTTP header values, JWTs). */
class ComputedLeases implements LeaseBroker {
  constructor(private readonly make: (r: LeaseRequest) => Promise<Lease>) {}
  acquire(r: LeaseRequest): Promise<Lease> {
    return this.make(r);
  }
  async release(): Promise<void> {}
}

export function createLeaseBroker(c: ConnectionConfig, deps: BrokerDeps, previous: KeyedBroker | undefined): KeyedBroker {
  const key = JSON.stringify([c.protocol, c.upstream, c.credentials]);
  if (previous?.reuseKey === key) return previous;
  const keyed = <B extends LeaseBroker>(b: B): B & KeyedBroker => Object.assign(b, { reuseKey: key });
  switch (c.protocol) {
    case 'postgres': {
      const cred = c.credentials;
      if (cred.type === 'static') return new StaticLeases(deps.resolver, cred.username, cred.password);
      return keyed(new EphemeralPgLeases({ connectionName: c.name, upstream: c.upstream, credentials: cred, resolver: deps.resolver, logger: deps.logger, nodeId: deps.nodeId() }));
    }
    case 'mysql': {
      const cred = c.credentials;
      if (cred.type === 'static') return new StaticLeases(deps.resolver, cred.username, cred.password);
      return keyed(new EphemeralMysqlLeases({ connectionName: c.name, upstream: c.upstream, credentials: cred, resolver: deps.resolver, logger: deps.logger, nodeId: deps.nodeId() }));
    }
    case 'ssh': {
      const cred = c.credentials;
      if (cred.type === 'ssh-certificate') return new SshCertificateLeases(deps.resolver, cred.ca_key, cred.ttl);
      return new SshStaticLeases(deps.resolver, cred.private_key, cred.password, cred.passphrase);
    }
    case 'http': {
      const cred = c.credentials;
      switch (cred.type) {
        case 'none':
          return new ComputedLeases(async () => ({ id: 'none', username: '', secret: new Secret(''), expiresAt: null }));
        case 'header':
          return new StaticLeases(deps.resolver, cred.name, cred.value);
        case 'jwt':
          return new ComputedLeases(async (r) => {
            const token = await deps.signJwt({ identity: r.identity, sessionId: r.sessionId, audience: cred.audience, ttlMs: cred.ttl });
            return { id: `jwt-${r.sessionId}`, username: cred.header, secret: new Secret(`Bearer ${token}`), expiresAt: Date.now() + cred.ttl };
          });
      }
    }
  }
}
