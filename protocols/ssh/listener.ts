/**
 * The SSH gateway: OpenSSH clients in (token as password or keyboard-interactive answer,
 * or a certificate from airlock's user CA), a per-session lease out (a fresh certificate,
 * or a held key). Every exec, shell, SFTP operation and port forward is an action policy
 * judges; output is masked where a rule asks; shells are recorded as asciicast.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, Connection, ServerChannel, Session as SshSessionChannel, TcpipRequestInfo, AcceptConnection, RejectConnection } from 'ssh2';
import sshpk from 'sshpk';
import type { GatewayCore } from '../../src/core/session-types.js';
import type { SshConnectionConfig } from './config.js';
import type { Identity } from '../../src/core/types.js';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import { generateEd25519 } from '../../src/auth/ssh-certs.js';
import type { SshCa } from '../../src/auth/ssh-ca.js';
import type { SshPermission } from '../../src/credentials/ssh-certificate.js';
import { connectUpstream, fingerprintOf } from './upstream.js';
import { ConnectionHandler } from './channels.js';
import { AuthDeadline, CLOSE_GRACE_MS } from '../../src/auth/deadline.js';

export interface SshListenerContext {
  readonly stateDir: string;
  /** airlock's user CA (callers' certificates), when the daemon has one. */
  readonly sshCa?: () => Promise<SshCa>;
  /** Resolves a secret reference (a configured host key). */
  readonly resolveSecret?: (ref: string) => Promise<string>;
}

interface Caller {
  identity: Identity;
  login: string;
}

const CERT_ALGO = /-cert-v0[01]@openssh\.com$/;

/**
 * ssh2 strips the signature blob's `string algo, string sig` framing only when the algo is
 * the key's own name; a certificate's signature names the plain algorithm (ssh-ed25519),
 * so the framing is still there: take the signature out of it.
 */
function innerSignature(sig: Buffer): Buffer {
  if (sig.length < 8) return sig;
  const nameLen = sig.readUInt32BE(0);
  if (4 + nameLen + 4 > sig.length) return sig;
  const name = sig.toString('ascii', 4, 4 + nameLen);
  const sigLen = sig.readUInt32BE(4 + nameLen);
  if (!/^[a-z0-9@.-]+$/.test(name) || 4 + nameLen + 4 + sigLen !== sig.length) return sig;
  return sig.subarray(4 + nameLen + 4);
}

export class SshListener {
  private server: ssh2.Server | null = null;
  private readonly connections = new Set<Connection>();
  private open = 0;
  private fingerprint = '';

  constructor(
    private readonly core: GatewayCore,
    private config: SshConnectionConfig,
    readonly context: SshListenerContext,
  ) {}

  get name(): string {
    return this.config.name;
  }

  get sessionCount(): number {
    return this.open;
  }

  get hostKeyFingerprint(): string {
    return this.fingerprint;
  }

  update(config: SshConnectionConfig): void {
    this.config = config;
  }

  /** The configured host key (file path, PEM text or secret reference), or one generated once into state_dir. */
  private async hostKey(): Promise<string> {
    const configured = this.config.host_key;
    if (configured !== undefined) {
      if (/^\$\{[a-z]+:/.test(configured)) {
        if (this.context.resolveSecret === undefined) throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'host_key secret references need the daemon');
        return this.context.resolveSecret(configured);
      }
      return configured.includes('PRIVATE KEY') ? configured : readFileSync(configured, 'utf8');
    }
    const file = join(this.context.stateDir, 'ssh_host_ed25519_key');
    if (!existsSync(file)) {
      mkdirSync(this.context.stateDir, { recursive: true, mode: 0o700 });
      try {
        writeFileSync(file, generateEd25519().privateKey, { mode: 0o600, flag: 'wx' });
      } catch {
        // made by another process first
      }
    }
    return readFileSync(file, 'utf8');
  }

  async listen(): Promise<AddressInfo> {
    const key = await this.hostKey();
    const pub = sshpk.parsePrivateKey(key, 'auto').toPublic();
    this.fingerprint = pub.fingerprint('sha256').toString();
    this.server = new ssh2.Server({ hostKeys: [key], ident: 'airlock' }, (client, info) => this.accept(client, info));
    const server = this.server;
    const address = await new Promise<AddressInfo>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.listen.port, this.config.listen.host, () => {
        server.off('error', reject);
        resolve(server.address() as AddressInfo);
      });
    });
    server.on('error', (e: Error) => this.core.logger.warn({ err: e.message, connection: this.config.name }, 'ssh listener error'));
    this.core.logger.info({ connection: this.config.name, hostKey: this.fingerprint, port: address.port }, 'ssh listener started');
    return address;
  }

  async close(drainMs: number): Promise<void> {
    const server = this.server;
    if (server === null) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const deadline = Date.now() + drainMs;
    while (this.open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const c of this.connections) c.end();
    await closed;
  }

  // ---- a client connection --------------------------------------------------

  private accept(client: Connection, info: ssh2.ClientInfo): void {
    this.connections.add(client);
    // ssh2 leaves Nagle on: small packets (SFTP requests, window adjusts) would wait for ACKs.
    // (Connection has setNoDelay at run time; @types/ssh2 does not list it.)
    (client as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
    let caller: Caller | null = null;
    // SSH has no error message before authentication: a DISCONNECT (ssh prints it), then the close.
    const deadline = new AuthDeadline(this.config.auth_timeout, (err) => {
      this.core.logger.info({ connection: this.config.name, client: info.ip, code: err.code }, 'ssh connection did not authenticate in time');
      client.end();
      // end() only half-closes; a peer that never closes its side must not keep the socket.
      // (ssh2 keeps the socket in _sock; @types/ssh2 does not list it.)
      const sock = (client as unknown as { _sock?: { destroy(): void } })._sock;
      setTimeout(() => sock?.destroy(), CLOSE_GRACE_MS).unref();
    });
    client.on('error', () => undefined);
    client.on('close', () => {
      deadline.cancel();
      this.connections.delete(client);
    });
    client.on('authentication', (ctx: AuthContext) => {
      this.authenticate(ctx)
        .then((c) => {
          if (c === null) return;
          // A public key offered without a signature is only a question (PK_OK), not a login.
          if (!(ctx.method === 'publickey' && ctx.signature === undefined)) deadline.done();
          caller = c;
          ctx.accept();
        })
        .catch((e: unknown) => {
          // "none" is every client's first probe for the methods on offer.
          if (ctx.method !== 'none') this.core.logger.info({ connection: this.config.name, login: ctx.username, method: ctx.method, code: asAirlockError(e).code }, 'ssh authentication refused');
          ctx.reject(['password', 'keyboard-interactive', 'publickey']);
        });
    });
    client.on('ready', () => {
      if (caller === null) return client.end();
      void this.ready(client, caller, { address: info.ip, port: info.port });
    });
  }

  /** Resolves the caller (then accepted), null when the context was answered otherwise, or throws (rejected). */
  private async authenticate(ctx: AuthContext): Promise<Caller | null> {
    const login = ctx.username;
    switch (ctx.method) {
      case 'password':
        return this.admit(await this.core.authenticate(ctx.password), login);
      case 'keyboard-interactive':
        return new Promise<Caller | null>((resolve, reject) => {
          ctx.prompt([{ prompt: 'airlock token: ', echo: false }], 'airlock', 'Paste an airlock token (airlock token exchange) as the answer.', (answers: string[]) => {
            this.core
              .authenticate((answers[0] ?? '').trim())
              .then((identity) => resolve(this.admit(identity, login)))
              .catch(reject);
          });
        });
      case 'publickey': {
        if (!CERT_ALGO.test(ctx.key.algo) || this.context.sshCa === undefined) throw new AirlockError('AIRLOCK_AUTH_INVALID');
        const ca = await this.context.sshCa();
        const cert = ca.verify(ctx.key.data);
        // airlock's CA names the subject as the principal; the login is then a matter of allowed_logins.
        if (!cert.principals.includes(cert.identity.subject)) throw new AirlockError('AIRLOCK_AUTH_INVALID');
        const caller = this.admit(cert.identity, login);
        // Without a signature the client only asks whether the key would do: yes (PK_OK).
        if (ctx.signature === undefined || ctx.blob === undefined) return caller;
        // ssh2's own key code checks the signature in its SSH encoding, whatever the key type.
        const key = ssh2.utils.parseKey(cert.subjectKey.toString('ssh'));
        const ok = !(key instanceof Error) && !Array.isArray(key) && key.verify(ctx.blob, innerSignature(ctx.signature), ctx.hashAlgo) === true;
        if (!ok) throw new AirlockError('AIRLOCK_AUTH_SIGNATURE');
        return caller;
      }
      default:
        throw new AirlockError('AIRLOCK_AUTH_MISSING');
    }
  }

  /** The caller's groups must admit the connection and the requested login. */
  private admit(identity: Identity, login: string): Caller {
    const c = this.config;
    if (!c.allow_groups.some((g) => g === '*' || identity.groups.includes(g))) throw new AirlockError('AIRLOCK_FORBIDDEN');
    const logins = Object.entries(c.allowed_logins).filter(([g]) => g === '*' || identity.groups.includes(g)).flatMap(([, l]) => l);
    if (!logins.includes(login)) throw new AirlockError('AIRLOCK_FORBIDDEN', `${identity.subject} may not log in as ${login} on ${c.name}`);
    return { identity, login };
  }

  /**
   * Channel handlers go on at once (ssh2 refuses a channel nobody listens for); the
   * session and the upstream open meanwhile and each channel waits for them.
   */
  private ready(client: Connection, caller: Caller, address: { address: string; port: number }): void {
    const sessionP = this.core.openSession({ connection: this.config, identity: caller.identity, client: address, target: { login: caller.login } });
    const upstreamP = sessionP.then((session) => connectUpstream({ config: this.config, lease: session.lease, login: caller.login }));
    sessionP.catch(() => undefined);
    upstreamP.catch(() => undefined);
    // A channel that needs a permission the session's certificate lacks (a pty, a forward)
    // gets an upstream connection of its own, logged in with a certificate that carries it.
    const upstreamWith = async (permission: SshPermission): Promise<ssh2.Client> => {
      const session = await sessionP;
      if (session.lease.certify === undefined) return upstreamP;
      const certificate = await session.lease.certify([permission]);
      return connectUpstream({ config: this.config, lease: session.lease, login: caller.login, certificate });
    };
    const conn = new ConnectionHandler(this.config, sessionP, upstreamP, upstreamWith, this.context.stateDir, this.core);
    client.on('session', (accept: AcceptConnection<SshSessionChannel>) => conn.sessionChannel(accept()));
    client.on('tcpip', (accept: AcceptConnection<ServerChannel>, reject: RejectConnection, info: TcpipRequestInfo) => void conn.forward(accept, reject, info));
    // -R (tcpip-forward), streamlocal and any other global request: refused.
    client.on('request', (_accept: unknown, reject: (() => void) | undefined) => reject?.());
    let ended = false;
    let counted = false;
    const end = (reason: string): void => {
      if (ended) return;
      ended = true;
      if (counted) this.open--;
      void upstreamP.then((u) => u.end()).catch(() => undefined);
      conn.end();
      void sessionP.then((s) => s.close(reason)).catch(() => undefined);
    };
    client.on('close', () => end('client closed the connection'));
    sessionP
      .then((session) => {
        this.open++;
        counted = true;
        if (ended) this.open--;
        session.signal.addEventListener('abort', () => {
          // An administrator's kill is said on each open channel's stderr first; a plain end closes at once.
          const why: unknown = session.signal.reason;
          const told = why instanceof AirlockError && why.code === 'AIRLOCK_SESSION_KILLED' ? conn.sessionEnded(why, KILL_NOTICE_MS) : Promise.resolve();
          void told.then(() => {
            client.end();
            end('session ended');
          });
        }, { once: true });
      })
      .catch((e: unknown) => {
        this.core.logger.info({ connection: this.config.name, subject: caller.identity.subject, code: asAirlockError(e).code }, 'ssh session refused');
        setTimeout(() => client.end(), 5_000).unref();
      });
    upstreamP.then((u) => u.on('close', () => client.end())).catch(() => undefined);
  }
}


/** How long a killed session's channels get to take the notice before the connection closes. */
const KILL_NOTICE_MS = 1_000;

export { fingerprintOf };
