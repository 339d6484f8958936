/**
 * The daemon: listeners from config, the admin API, reload on SIGHUP, graceful stop on SIGTERM.
 */
import type { AddressInfo } from 'node:net';
import { type Config, type ConnectionConfig } from '../src/config/index.js';
import { loadConfigFile } from './config.js';
import { createLogger, type Logger } from '../src/util/log.js';
import { AirlockError } from '../src/util/errors.js';
import { TokenVerifier } from '../src/auth/verifier.js';
import { Gateway } from '../src/core/gateway.js';
import { describeConnections, type ConnectionFacts } from '../src/admin/connections.js';
import type { Identity } from '../src/core/types.js';
import { mcpAdminRoutes } from '../src/mcp/admin-routes.js';
import { SshCa } from '../src/auth/ssh-ca.js';
import { sshCertRoutes } from '../src/admin/ssh-cert.js';
import { SecretResolver } from '../src/secrets/index.js';
import { AdminServer, type AdminDeps } from '../src/admin/server.js';
import { metricsRoutes } from '../src/admin/metrics-routes.js';
import { consoleRoutesFor } from './console.js';
import { buildPorts, node, type Services } from './wiring.js';
import { FleetKills, PostgresStateStore } from '../src/state/index.js';
import type { Listener, ListenerContext } from '../src/core/adapter.js';
import { adapterFor, mcpBackends } from './adapters.js';

function createListener(gateway: Gateway, c: ConnectionConfig, context: ListenerContext): Listener {
  return adapterFor(c).createListener(gateway, c, context);
}

/** What changes how a listener's socket is set up: a change restarts it on reload. */
function listenerShape(c: ConnectionConfig): string {
  return JSON.stringify([c.protocol, c.listen, 'tls' in c ? c.tls : undefined, 'host_key' in c ? c.host_key : undefined]);
}

function sameAddress(a: ConnectionConfig, b: ConnectionConfig): boolean {
  return listenerShape(a) === listenerShape(b);
}

export class Daemon {
  readonly listeners = new Map<string, { listener: Listener; config: ConnectionConfig; address: AddressInfo }>();
  private admin: AdminServer | null = null;
  adminAddress: AddressInfo | null = null;
  private gateway: Gateway | null = null;
  private services: Services | null = null;
  private stopping: Promise<void> | null = null;
  private secrets: SecretResolver | null = null;
  /** With a shared store: kill requests for sessions other nodes hold, and for this node's from others. */
  private kills: FleetKills | null = null;

  constructor(
    private config: Config,
    readonly logger: Logger,
    private readonly configFile: string | null = null,
  ) {}

  static async fromFile(file: string, levelOverride?: string): Promise<Daemon> {
    const config = loadConfigFile(file);
    const logger = createLogger(levelOverride ?? config.log.level);
    return new Daemon(config, logger, file);
  }

  get core(): Gateway {
    if (this.gateway === null) throw new AirlockError('AIRLOCK_INTERNAL', 'daemon not started');
    return this.gateway;
  }

  async start(): Promise<void> {
    const secrets = new SecretResolver({ warn: (m) => this.logger.warn(m) });
    this.secrets = secrets;
    const verifier = await TokenVerifier.create(this.config, secrets);
    this.services = await buildPorts(this.config, this.logger, null, secrets);
    this.gateway = new Gateway(this.config, this.logger, verifier, this.services.ports, secrets, (c, deps, keyed) => adapterFor(c).leaseBroker(c, deps, keyed));
    const gateway = this.gateway;
    const store = this.services.store;
    if (store instanceof PostgresStateStore) this.kills = new FleetKills(store, node, (id, by, o) => gateway.killSession(id, by, o), this.logger);
    try {
      // Sweep roles orphaned by a crash before any new session starts.
      await this.gateway.startSweepers();
      for (const c of this.config.connections) await this.startListener(c);
      await this.startAdmin();
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.logger.info({ connections: this.config.connections.map((c) => c.name) }, 'airlock started');
  }

  private async startListener(c: ConnectionConfig): Promise<void> {
    const listener = createListener(this.core, c, {
      stateDir: this.config.state_dir,
      sshCa: () => this.sshCa(),
      resolveSecret: async (ref) => (await (this.secrets ?? new SecretResolver()).resolve(ref)).reveal(),
    });
    const address = await listener.listen();
    this.listeners.set(c.name, { listener, config: c, address });
  }

  /** An SSH listener's host key fingerprint (for GET /v1/connections). */
  /** A connection's own facts for GET /v1/connections, as its protocol's adapter tells them. */
  private describe(c: ConnectionConfig, caller: Identity): ConnectionFacts {
    return adapterFor(c).describe(c, caller, { hostKey: this.hostKeyOf(c.name) });
  }

  private hostKeyOf(name: string): string | undefined {
    return this.listeners.get(name)?.listener.hostKeyFingerprint;
  }

  private sshCaCache: Promise<SshCa> | null = null;

  /** The SSH user CA, loaded once (ssh_ca.key, or a key generated into state_dir). */
  sshCa(): Promise<SshCa> {
    this.sshCaCache ??= SshCa.load(this.config, this.secrets ?? new SecretResolver());
    this.sshCaCache.catch(() => {
      this.sshCaCache = null;
    });
    return this.sshCaCache;
  }

  private async startAdmin(): Promise<void> {
    const listen = this.config.admin.listen;
    if (listen === undefined || this.services === null) return;
    const gateway = this.core;
    const services = this.services;
    services.metrics.attach({
      auditQueueDepth: () => this.services?.audit.queueDepth ?? 0,
      approvalsPending: () => this.services?.broker.list({ status: 'pending' }).length ?? 0,
      ephemeralRolesLive: () => [...gateway.sessions.values()].filter((s) => 'credentials' in s.connection && s.connection.credentials.type === 'ephemeral').length,
      stateStoreUp: async () => ((await this.services?.store.reachable()) === true ? 1 : 0),
    });
    const consoleRoutes = await consoleRoutesFor({
      config: this.config,
      logger: this.logger,
      authenticate: (t) => gateway.authenticate(t),
      broker: services.broker,
      fleet: services.fleet,
      exporters: () => services.exporters.status(),
      selfUrl: () => adminSelfUrl(this.adminAddress, this.config.admin.tls !== undefined),
      secrets: this.secrets ?? new SecretResolver(),
    });
    this.admin = new AdminServer({
      logger: this.logger,
      ...(this.config.admin.tls === undefined ? {} : { tls: this.config.admin.tls }),
      onError: (code) => this.services?.metrics.error(code),
      authenticate: (t) => gateway.authenticate(t),
      health: () => ({
        healthy: services.healthy(),
        sessions: gateway.sessions.size,
        listeners: [...this.listeners.keys()],
        exporters: services.exporters.status(),
      }),
      jwks: () => gateway.verifier.publicJwks(),
      issueToken: (identity, ttl) => gateway.verifier.issueGatewayToken(identity, ttl),
      maxTokenTtlMs: () => this.config.auth.max_token_ttl,
      extraRoutes: [...metricsRoutes(services.metrics, { checks: async () => this.readiness() }), ...consoleRoutes, ...sshCertRoutes(() => this.sshCa(), () => this.config), ...mcpAdminRoutes({
        authenticate: (t) => gateway.authenticate(t),
        connections: (identity) => describeConnections(this.config, identity, (name) => this.listeners.get(name)?.address, (id, c) => this.services?.rulesFor(id, c) ?? [], (c, caller) => this.describe(c, caller)),
        recordToolCall: (identity, event) =>
          services.ports.audit.append({ type: 'mcp.tool_call', identity: { subject: identity.subject, issuer: identity.issuer, groups: identity.groups, kind: identity.kind }, ...event }).then(() => undefined),
        limits: { maxRows: 200, maxBytes: 256 * 1024, holdTimeoutMs: this.config.approvals.default_timeout },
        backends: mcpBackends,
        version: '0.1.0',
        maxSessions: this.config.admin.mcp.max_sessions,
        maxSessionsPerIdentity: this.config.admin.mcp.max_sessions_per_identity,
      })],
      connections: (caller) => describeConnections(this.config, caller, (name) => this.listeners.get(name)?.address, (id, c) => this.services?.rulesFor(id, c) ?? [], (c, caller) => this.describe(c, caller)),
      ...this.adminRoutes(services),
    });
    this.adminAddress = await this.admin.listen(listen.host, listen.port);
    this.logger.info({ address: this.adminAddress.address, port: this.adminAddress.port }, 'admin API started');
  }

  /** The admin API's approvals and sessions, with `sessions kill` reaching the node that holds the session. */
  private adminRoutes(services: Services): Required<Pick<AdminDeps, 'approvals' | 'sessions'>> & Pick<AdminDeps, 'nodes'> {
    const base = services.admin(() => this.config);
    const gateway = this.core;
    return {
      ...base,
      sessions: {
        ...base.sessions,
        kill: async (caller, id, opts) => {
          if (!caller.groups.some((g) => this.config.admin.admins.includes(g))) {
            throw new AirlockError('AIRLOCK_FORBIDDEN', 'only admins (admin.admins) may kill sessions');
          }
          const reason = opts.reason?.trim() || undefined;
          if (this.kills !== null) {
            return this.kills.kill(id, caller, { ...(reason === undefined ? {} : { reason }), timeoutMs: Math.min(opts.timeoutMs ?? KILL_TIMEOUT_MS, MAX_KILL_TIMEOUT_MS) });
          }
          const ended = await gateway.killSession(id, { subject: caller.subject, issuer: caller.issuer }, reason === undefined ? {} : { reason });
          if (ended === null) throw new AirlockError('AIRLOCK_UNSUPPORTED', `no open session ${id} on this node`);
          return { session: id, node, endReason: ended };
        },
      },
    };
  }

  /** GET /readyz: every check must hold for a load balancer to send new sessions here. */
  private async readiness(): Promise<Record<string, boolean>> {
    return {
      audit_writable: this.services?.audit.healthy === true,
      listeners_up: this.stopping === null && this.config.connections.every((c) => this.listeners.has(c.name)),
      state_store_reachable: (await this.services?.store.reachable()) === true,
    };
  }

  /** SIGHUP: re-read the config; new listeners start, removed ones stop, changed rules apply to new statements. */
  async reload(): Promise<void> {
    if (this.configFile === null) return;
    let next: Config;
    try {
      next = loadConfigFile(this.configFile);
    } catch (e) {
      this.logger.error({ err: e instanceof AirlockError ? e.message : String(e) }, 'reload refused: config is invalid; keeping the running config');
      return;
    }
    // Secret references are resolved again after a reload (rotated passwords, new files).
    this.secrets?.invalidate();
    let verifier: TokenVerifier;
    try {
      verifier = await TokenVerifier.create(next, this.secrets ?? undefined);
    } catch (e) {
      // e.g. auth.token_signing_key unreadable: keep serving with the running keys.
      this.logger.error({ err: e instanceof AirlockError ? e.message : 'token keys could not be loaded' }, 'reload refused: token keys could not be loaded; keeping the running config');
      return;
    }
    const services = await buildPorts(next, this.logger, this.services, this.secrets ?? undefined);
    this.config = next;
    this.services = services;
    this.core.reconfigure(next, verifier, services.ports);
    const wanted = new Map(next.connections.map((c) => [c.name, c]));
    for (const [name, entry] of this.listeners) {
      const c = wanted.get(name);
      if (c === undefined || !sameAddress(c, entry.config)) {
        await entry.listener.close(0);
        this.listeners.delete(name);
      } else {
        entry.listener.update(c);
        entry.config = c;
      }
    }
    for (const c of next.connections) {
      if (!this.listeners.has(c.name)) {
        try {
          await this.startListener(c);
        } catch (e) {
          this.logger.error({ err: e instanceof AirlockError ? e.message : String(e), connection: c.name }, 'listener failed to start on reload');
        }
      }
    }
    this.logger.info({ connections: [...this.listeners.keys()] }, 'configuration reloaded');
  }

  /** SIGTERM: stop accepting, let sessions finish up to the drain timeout, then close them. */
  stop(): Promise<void> {
    if (this.stopping === null) {
      this.stopping = (async () => {
        this.gateway?.startDraining();
        const drain = this.config.drain_timeout;
        await Promise.all([...this.listeners.values()].map((l) => l.listener.close(drain)));
        this.listeners.clear();
        // A session's end (lease release, its session.end record) must be written before the audit log closes.
        await this.gateway?.endsSettled();
        await this.admin?.close();
        await this.gateway?.stopSweepers();
        await this.services?.close();
        this.logger.info('airlock stopped');
      })();
    }
    return this.stopping;
  }
}

/** How long `sessions kill` waits for the holding node to confirm, unless the caller says (at most the max). */
const KILL_TIMEOUT_MS = 10_000;
const MAX_KILL_TIMEOUT_MS = 120_000;

function adminSelfUrl(a: AddressInfo | null, tls: boolean): string {
  const scheme = tls ? 'https' : 'http';
  if (a === null) return `${scheme}://127.0.0.1`;
  const host = a.address === '0.0.0.0' ? '127.0.0.1' : a.address === '::' ? '[::1]' : a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `${scheme}://${host}:${a.port}`;
}
