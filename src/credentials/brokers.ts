/**
 * Lease brokers as the gateway sees them: each protocol's adapter picks the broker for a
 * connection's credentials (protocols/<p>/adapter.ts), this file keeps one across a reload.
 */
import type { ConnectionConfig } from '../config/index.js';
import type { Logger } from '../util/log.js';
import type { Identity } from '../core/types.js';
import type { Lease } from '../core/session-types.js';
import type { SecretResolver } from '../secrets/index.js';
import type { LeaseBroker, LeasedRoles, LeaseRequest, RoleLedger } from './lease.js';
import type { Sweepable } from './sweeper.js';

export interface BrokerDeps {
  resolver: SecretResolver;
  logger: Logger;
  /** This node's id (nodeId(state_dir)), computed on first use. */
  nodeId: () => string;
  stateDir: string;
  /** With the PostgreSQL state store: where ephemeral roles get their fleet-wide leases. */
  ledger?: RoleLedger;
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

export function hasLeasedRoles(b: LeaseBroker): b is LeaseBroker & LeasedRoles {
  return typeof (b as Partial<LeasedRoles>).dropLeasedRole === 'function' && typeof (b as Partial<LeasedRoles>).heldRoles === 'function';
}

/** A lease whose `secret` is made per session by a function (HTTP header values, JWTs). */
export class ComputedLeases implements LeaseBroker {
  constructor(private readonly make: (r: LeaseRequest) => Promise<Lease>) {}
  acquire(r: LeaseRequest): Promise<Lease> {
    return this.make(r);
  }
  async release(): Promise<void> {}
}

/** Marks a broker as worth keeping across a reload while its connection's upstream and credentials stay the same. */
export type KeepAcrossReload = <B extends LeaseBroker>(b: B) => B & KeyedBroker;

/** One protocol's choice of broker for a connection (ProtocolAdapter.leaseBroker). */
export type LeaseBrokerFactory = (c: ConnectionConfig, deps: BrokerDeps, keyed: KeepAcrossReload) => KeyedBroker;

/**
 * The broker of a connection, chosen by its protocol's adapter (`make`); an unchanged
 * connection keeps the broker it had (and its warm admin pool) across a reload.
 */
export function createLeaseBroker(c: ConnectionConfig, deps: BrokerDeps, previous: KeyedBroker | undefined, make: LeaseBrokerFactory): KeyedBroker {
  const key = JSON.stringify([c.protocol, c.upstream, c.credentials]);
  if (previous?.reuseKey === key) return previous;
  return make(c, deps, (b) => Object.assign(b, { reuseKey: key }));
}
