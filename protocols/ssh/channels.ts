/**
 * One authenticated SSH connection's channels: session channels (pty, env allow-list,
 * exec and shell judged by policy, SFTP through the relay, signals and exit status passed
 * back exactly, output masked, interactive sessions recorded) and direct-tcpip forwards a
 * rule allows. Every channel is accepted at once and waits for the session and the upstream.
 *
 * An exec that can become a shell (parsers/shell/interactive.ts) is interactive for
 * policy and recorded like a shell. A channel with a pty, and a forward, run on an
 * upstream connection whose certificate permits just that (certificate leases), so the
 * target refuses a pty or a forward airlock did not allow.
 */
import { relative } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { finished } from 'node:stream/promises';
import type ssh2 from 'ssh2';
import type { ServerChannel, Session as SshSessionChannel, PseudoTtyInfo, ClientChannel, TcpipRequestInfo, AcceptConnection, RejectConnection } from 'ssh2';
import type { GatewayCore, Session } from '../../src/core/session-types.js';
import type { SshConnectionConfig } from './config.js';
import type { FinalDecision } from '../../src/core/types.js';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import { DetectorRules, StreamMasker, keyFromSecret } from '../../src/masking/index.js';
import { GlobSet } from '../../src/policy/glob.js';
import { CastWriter, recordingPath } from '../../src/audit/recordings.js';
import { relaySftp } from './sftp-relay.js';
import { bytesOfText, textOfBytes } from './latin1.js';
import { TypedLines } from './typed-lines.js';
import { execIsInteractive, transferServerOf } from '../../parsers/shell/interactive.js';
import { isCodeVariable, valueMayRunCode } from '../../parsers/shell/index.js';
import type { SshPermission } from '../../src/credentials/ssh-certificate.js';
import { forwardHost } from '../../src/policy/forward.js';

/** The rule name a refused file-transfer exec is recorded under. */
export const TRANSFER_EXEC_RULE = '(file-transfer-exec)';

/** The login's home directory on the target (what SFTP resolves relative paths against), or null. */
function homeDirectory(up: ssh2.Client): Promise<string | null> {
  return new Promise((resolve) => {
    up.sftp((err, sftp) => {
      if (err) return resolve(null);
      sftp.realpath('.', (e, path) => {
        sftp.end();
        resolve(e ? null : path);
      });
    });
  });
}

/**
 * How an upstream command ended, listened for from the moment its channel exists: ssh2 may
 * hand over the exec reply, the output and the exit status from one read, so a listener
 * added a microtask later (after an await) misses the status and the caller sees 255.
 */
interface ExitWatch {
  code: number | null;
  signal: string | null;
  core: boolean;
  desc: string;
}

function opened(open: (cb: (err: Error | undefined, ch: ClientChannel) => void) => void): Promise<{ ch: ClientChannel; exit: ExitWatch }> {
  return new Promise((resolve, reject) => {
    open((err, ch) => {
      if (err) return reject(err);
      const exit: ExitWatch = { code: null, signal: null, core: false, desc: '' };
      ch.once('exit', (c: number | null, sig?: string, core?: boolean, desc?: string) => {
        if (typeof c === 'number') exit.code = c;
        else if (sig !== undefined) Object.assign(exit, { signal: sig, core: core ?? false, desc: desc ?? '' });
      });
      resolve({ ch, exit });
    });
  });
}

/** What a session channel's handlers share with the command it runs. */
interface RunningChannel {
  readonly env: Record<string, string>;
  setRunning(c: ClientChannel): void;
  setCast(w: CastWriter): void;
}

/** Output kept for the audit record: masked as a whole (never flushed early), cut at `cap` bytes. */
class CappedText {
  private text = '';
  private truncated = false;

  constructor(
    private readonly cap: number,
    private readonly masker: StreamMasker | null,
  ) {}

  push(raw: string): void {
    this.keep(this.masker === null ? raw : this.masker.push(raw));
  }

  end(): { text: string; truncated: boolean } {
    if (this.masker !== null) this.keep(this.masker.end());
    return { text: this.text, truncated: this.truncated };
  }

  private keep(text: string): void {
    if (this.truncated || text === '') return;
    this.text += text;
    if (Buffer.byteLength(this.text) > this.cap) {
      this.text = Buffer.from(this.text).subarray(0, this.cap).toString('utf8').replace(/\uFFFD$/, '');
      this.truncated = true;
    }
  }
}

/** One authenticated client connection's channels. */
export class ConnectionHandler {
  private readonly envAllowed: GlobSet;
  private maskingKey: Buffer | null = null;

  private sessionValue: Session | null = null;
  /** Upstream connections whose certificate carries a permission, opened when first needed. */
  private readonly permitted = new Map<SshPermission, Promise<ssh2.Client>>();
  /** The client's open session channels (exec, shell, sftp): told why when the session is ended under them. */
  private readonly channels = new Set<ServerChannel>();

  constructor(
    private readonly config: SshConnectionConfig,
    private readonly sessionP: Promise<Session>,
    private readonly upstream: Promise<ssh2.Client>,
    private readonly connectWith: (permission: SshPermission) => Promise<ssh2.Client>,
    private readonly stateDir: string,
    private readonly core: GatewayCore,
  ) {
    this.envAllowed = new GlobSet(config.env_allow, { separator: null });
    sessionP.then((s) => (this.sessionValue = s)).catch(() => undefined);
  }

  /** The session, once open (every channel operation waits for it; a refusal reaches the channel's stderr). */
  private get session(): Session {
    if (this.sessionValue === null) throw new AirlockError('AIRLOCK_INTERNAL', 'session not open');
    return this.sessionValue;
  }

  /** The upstream for a channel policy allowed that needs `permission` (the plain one for held keys). */
  private upstreamWith(permission: SshPermission): Promise<ssh2.Client> {
    let up = this.permitted.get(permission);
    if (up === undefined) {
      up = this.connectWith(permission);
      up.catch(() => this.permitted.delete(permission));
      this.permitted.set(permission, up);
    }
    return up;
  }

  /**
   * The session was ended under the client (an administrator's kill): each open channel gets
   * the reason on its stderr, then exit status 255 — what ssh shows for a connection that
   * failed — and the channel's close. Resolves once the client has closed each channel too, or
   * after `boundMs` for one that does not answer: OpenSSH exits at once on a disconnect, with
   * channel output it has not written yet lost, so the connection closes only after that.
   */
  sessionEnded(reason: AirlockError, boundMs: number): Promise<void> {
    const told = [...this.channels].map(
      (stream) =>
        new Promise<void>((resolve) => {
          stream.once('close', () => resolve());
          try {
            stream.stderr.write(`\r\nairlock: ${reason.message}\r\n`);
            stream.exit(255);
            stream.end();
          } catch {
            resolve(); // the channel was closing anyway
          }
        }),
    );
    this.channels.clear();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, boundMs)));
    return Promise.race([Promise.all(told).then(() => undefined), bound]).finally(() => clearTimeout(timer));
  }

  private opened(stream: ServerChannel): ServerChannel {
    this.channels.add(stream);
    stream.once('close', () => this.channels.delete(stream));
    return stream;
  }

  /** The client connection ended: so do the extra upstream connections. */
  end(): void {
    for (const up of this.permitted.values()) void up.then((u) => u.end()).catch(() => undefined);
    this.permitted.clear();
  }

  sessionChannel(ch: SshSessionChannel): void {
    let pty: PseudoTtyInfo | null = null;
    const env: Record<string, string> = {};
    let running: ClientChannel | null = null;
    let cast: CastWriter | null = null;
    ch.on('pty', (accept, reject, info) => {
      // TERM reaches the target's shell like an env value: refused when bash could run code in it.
      if (valueMayRunCode(info.term)) return reject?.();
      pty = info;
      accept?.();
    });
    ch.on('window-change', (accept, _reject, info) => {
      // Before the upstream runs, the new size is what it starts with.
      if (pty !== null) pty = { ...pty, rows: info.rows, cols: info.cols, height: info.height, width: info.width };
      running?.setWindow(info.rows, info.cols, info.height, info.width);
      cast?.resize(info.cols, info.rows);
      accept?.();
    });
    ch.on('env', (accept, reject, info) => {
      // A value bash could run as code when a line reads the name arithmetically
      // (`LC_X='a[$(rm y)]'`, then `(( LC_X ))`), or a name the shell itself runs (BASH_ENV,
      // PROMPT_COMMAND …) even where env_allow names it, is never set.
      if (this.envAllowed.match(info.key) !== null && !isCodeVariable(info.key) && !valueMayRunCode(info.val)) {
        env[info.key] = info.val;
        accept?.();
      } else reject?.();
    });
    ch.on('signal', (accept, reject, info) => {
      try {
        running?.signal(info.name);
        accept?.();
      } catch {
        reject?.(); // a name ssh2 does not know
      }
    });
    ch.on('auth-agent', (_accept, reject) => reject?.());
    ch.on('x11', (_accept, reject) => reject?.());
    const channel: RunningChannel = { env, setRunning: (c) => (running = c), setCast: (w) => (cast = w) };
    ch.on('exec', (accept, _reject, info) => {
      // Accept at once and hold the channel: a late accept() loses a command whose EOF came first.
      const stream = this.opened(accept());
      stream.pause();
      void this.exec(stream, info.command, pty, channel);
    });
    ch.on('shell', (accept) => {
      const stream = this.opened(accept());
      stream.pause();
      void this.shell(stream, () => pty, channel);
    });
    ch.on('subsystem', (accept, reject, info) => {
      if (info.name !== 'sftp') return reject?.();
      const stream = this.opened(accept());
      stream.pause();
      void this.sftp(stream);
    });
  }

  private refuse(stream: ServerChannel, d: Extract<FinalDecision, { effect: 'deny' }>): void {
    stream.stderr.write(`airlock: denied by rule ${d.rule}: ${d.reason}\r\n`);
    stream.exit(126);
    stream.end();
  }

  private fail(stream: ServerChannel, e: unknown): void {
    const err = asAirlockError(e);
    stream.stderr.write(`airlock: ${err.message}\r\n`);
    stream.exit(err.code === 'AIRLOCK_DENIED' ? 126 : 255);
    stream.end();
  }

  private async key(): Promise<Buffer> {
    this.maskingKey ??= keyFromSecret(await this.core.maskingKey());
    return this.maskingKey;
  }

  /** Makes maskers for this session's detectors (null when it masks nothing). */
  private async maskerFactory(): Promise<() => StreamMasker | null> {
    await this.sessionP;
    const rules = new DetectorRules(this.session.maskPlan.detectors);
    if (rules.empty) return () => null;
    const key = await this.key();
    return () => new StreamMasker(rules, { key });
  }

  private async masker(): Promise<StreamMasker | null> {
    return (await this.maskerFactory())();
  }

  /**
   * How long masked output may sit idle before it is let through: only for an interactive
   * session of a person (the prompt must show), never for agents, machines or plain exec.
   */
  private flushIdleMs(interactive: boolean): number {
    return interactive && this.session.identity.kind === 'human' ? this.config.output_flush_idle : 0;
  }

  private async exec(stream: ServerChannel, command: string, pty: PseudoTtyInfo | null, channel: RunningChannel): Promise<void> {
    try {
      await this.sessionP;
      const argv = command.trim().split(/\s+/).filter((a) => a !== '');
      // The target's sftp-server or scp's remote end would take file operations past the SFTP judge.
      const transfer = transferServerOf(command);
      if (transfer !== null) {
        this.session.record({ type: 'ssh.exec', command, decision: 'deny', rule: TRANSFER_EXEC_RULE });
        const why = transfer.kind === 'scp'
          ? 'the legacy scp protocol (scp -O) is not relayed: use scp without -O (it runs over SFTP)'
          : 'an sftp-server is reached through the sftp subsystem only: use sftp without -s';
        stream.stderr.write(`airlock: denied by rule ${TRANSFER_EXEC_RULE}: ${why}\r\n`);
        stream.exit(126);
        stream.end();
        return;
      }
      const verdict = execIsInteractive(command, pty !== null);
      const decision = await this.session.check({ kind: 'exec', argv, command, interactive: verdict.interactive }, (h) => stream.stderr.write(`${h.howToApprove}\r\n`));
      if (decision.effect === 'deny') {
        this.session.record({ type: 'ssh.exec', command, decision: 'deny', rule: decision.rule, ...(verdict.interactive ? { interactive: true } : {}) });
        return this.refuse(stream, decision);
      }
      const up = pty === null ? await this.upstream : await this.upstreamWith('permit-pty');
      const open = (cb: (err: Error | undefined, ch: ClientChannel) => void): void => void up.exec(command, { pty: pty ?? false, env: channel.env }, cb);
      if (verdict.interactive) {
        const out = await this.recorded(stream, open, pty, channel);
        this.session.record({ type: 'ssh.exec', command, decision: 'allow', interactive: true, reason: verdict.reason, exitCode: out.code, ...(out.signal === null ? {} : { signal: out.signal }) });
        return;
      }
      const { ch: upStream, exit } = await opened(open);
      channel.setRunning(upStream);
      // The recorded output: masked by maskers of its own that never flush early, capped at record.output_bytes.
      const cap = this.config.record.output_bytes;
      const recorded = { out: new CappedText(cap, await this.masker()), err: new CappedText(cap, await this.masker()) };
      const out = await this.pipe(stream, upStream, exit, 0, {
        output: (text) => recorded.out.push(text),
        errors: (text) => recorded.err.push(text),
      });
      const stdout = recorded.out.end();
      const stderr = recorded.err.end();
      this.session.record({
        type: 'ssh.exec', command, decision: 'allow', exitCode: out.code, ...(out.signal === null ? {} : { signal: out.signal }),
        output: stdout.text, ...(stderr.text === '' ? {} : { stderr: stderr.text }), truncated: stdout.truncated || stderr.truncated,
      });
    } catch (e) {
      this.fail(stream, e);
    }
  }

  private async shell(stream: ServerChannel, ptyNow: () => PseudoTtyInfo | null, channel: RunningChannel): Promise<void> {
    try {
      await this.sessionP;
      const decision = await this.session.check({ kind: 'shell', command: '' }, (h) => stream.stderr.write(`${h.howToApprove}\r\n`));
      if (decision.effect === 'deny') return this.refuse(stream, decision);
      const pty = ptyNow();
      const up = pty === null ? await this.upstream : await this.upstreamWith('permit-pty');
      const window = pty === null ? false : { rows: pty.rows, cols: pty.cols, height: pty.height, width: pty.width, term: pty.term, modes: pty.modes };
      await this.recorded(stream, (cb) => void up.shell(window as never, { env: channel.env }, cb), pty, channel);
    } catch (e) {
      this.fail(stream, e);
    }
  }

  /**
   * An interactive session (a shell, or an exec that can become one): run, recorded as
   * asciicast through maskers that never flush early, each typed line in the audit log.
   */
  private async recorded(stream: ServerChannel, open: (cb: (err: Error | undefined, ch: ClientChannel) => void) => void, pty: PseudoTtyInfo | null, channel: RunningChannel): Promise<{ code: number | null; signal: string | null }> {
    const { ch: upStream, exit } = await opened(open);
    channel.setRunning(upStream);
    const file = recordingPath(this.stateDir, this.session.id);
    // A client without a terminal of its own (ssh -tt < script) asks for a 0x0 pty.
    const cast = new CastWriter(file, { width: pty === null || pty.cols === 0 ? 80 : pty.cols, height: pty === null || pty.rows === 0 ? 24 : pty.rows, ...(pty?.term === undefined ? {} : { term: pty.term }), title: `${this.session.identity.subject}@${this.config.name}` });
    channel.setCast(cast);
    // The recording's own maskers never flush on idle: a secret typed or echoed a key at a
    // time is still whole when they scan it (the live output may flush for the prompt).
    const recordOut = await this.masker();
    const recordIn = await this.masker();
    // Typed lines also go to the audit log, one event per Enter (masked like the recording).
    const lines = new TypedLines();
    const typed = (text: string): void => {
      cast.input(text);
      for (const l of lines.push(text)) this.session.record({ type: 'ssh.recording', kind: 'line', line: l.line, exact: l.exact });
    };
    const output = (text: string): void => cast.output(recordOut === null ? text : recordOut.push(text));
    const out = await this.pipe(stream, upStream, exit, this.flushIdleMs(true), {
      output,
      errors: output,
      input: (text) => typed(recordIn === null ? text : recordIn.push(text)),
    });
    if (recordOut !== null) cast.output(recordOut.end());
    if (recordIn !== null) typed(recordIn.end());
    const meta = await cast.close();
    this.session.record({ type: 'ssh.recording', kind: 'file', file: relative(this.stateDir, meta.file), bytes: meta.bytes, sha256: meta.sha256 });
    return out;
  }

  /**
   * Both ways with backpressure; output (stdout and stderr) through the detectors where a
   * rule asks (let through after `flushIdleMs` of quiet when that is not 0); exit status or
   * signal passed back exactly. Masking works on latin1 text (one char per byte), so bytes
   * no finding touches pass unchanged, a UTF-8 character split across chunks included. The
   * taps see the target's output unmasked, decoded as UTF-8: what they keep, they mask.
   */
  private async pipe(stream: ServerChannel, upStream: ClientChannel, exit: ExitWatch, flushIdleMs: number, taps: { output?: (text: string) => void; errors?: (text: string) => void; input?: (text: string) => void }): Promise<{ code: number | null; signal: string | null }> {
    const outMask = await this.masker();
    const errMask = await this.masker();
    const outText = new StringDecoder('utf8');
    const errText = new StringDecoder('utf8');
    const inText = new StringDecoder('utf8');
    let idle: NodeJS.Timeout | null = null;
    // stdout and stderr share the channel's window: while the client has either one full,
    // the target's output waits (both streams), so what a client does not read is never
    // buffered here without bound.
    const full = new Set<NodeJS.WritableStream>();
    const emit = (target: NodeJS.WritableStream & { write(b: Buffer | string): boolean }, bytes: Buffer): void => {
      if (bytes.length === 0 || target.write(bytes)) return;
      full.add(target);
      upStream.pause();
      upStream.stderr.pause();
    };
    const drained = (target: NodeJS.WritableStream): void => {
      if (!full.delete(target) || full.size > 0) return;
      upStream.resume();
      upStream.stderr.resume();
    };
    const flushIdle = (): void => {
      if (idle !== null) clearTimeout(idle);
      if (flushIdleMs <= 0) return;
      idle = setTimeout(() => {
        if (outMask !== null) emit(stream, bytesOfText(outMask.flush()));
        if (errMask !== null) emit(stream.stderr, bytesOfText(errMask.flush()));
      }, flushIdleMs);
    };
    stream.on('drain', () => drained(stream));
    stream.stderr.on('drain', () => drained(stream.stderr));
    upStream.on('data', (d: Buffer) => {
      taps.output?.(outText.write(d));
      if (outMask === null) return emit(stream, d);
      emit(stream, bytesOfText(outMask.push(textOfBytes(d))));
      flushIdle();
    });
    upStream.stderr.on('data', (d: Buffer) => {
      taps.errors?.(errText.write(d));
      if (errMask === null) return emit(stream.stderr, d);
      emit(stream.stderr, bytesOfText(errMask.push(textOfBytes(d))));
      flushIdle();
    });
    stream.on('data', (d: Buffer) => {
      taps.input?.(inText.write(d));
      if (!upStream.write(d)) stream.pause();
    });
    upStream.on('drain', () => stream.resume());
    stream.on('end', () => upStream.end());
    const clientGone = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    stream.on('close', () => upStream.close());
    stream.resume();
    await new Promise<void>((resolve) => upStream.on('close', () => resolve()));
    // ssh2 emits 'close' once stdout has ended: stderr, paused while the client's window was
    // full, may still hold output. Every byte is passed on (unless the client leaves).
    await Promise.race([finished(upStream.stderr).catch(() => undefined), clientGone]);
    if (idle !== null) clearTimeout(idle);
    if (outMask !== null) emit(stream, bytesOfText(outMask.end()));
    if (errMask !== null) emit(stream.stderr, bytesOfText(errMask.end()));
    taps.output?.(outText.end());
    taps.errors?.(errText.end());
    // ssh2 sends EOF and CLOSE as soon as stdout is finished, dropping stderr still waiting
    // for the client's window: stderr is finished first.
    stream.stderr.end();
    await Promise.race([finished(stream.stderr).catch(() => undefined), clientGone]);
    // The exit status follows the output, as OpenSSH sends it.
    try {
      if (exit.code !== null) stream.exit(exit.code);
      else if (exit.signal !== null) stream.exit(exit.signal, exit.core, exit.desc);
    } catch {
      // a signal name ssh2 does not know: the channel closes without one
    }
    stream.end();
    return { code: exit.code, signal: exit.signal };
  }

  /** SFTP through the relay (each request naming a path judged; reads masked where a rule asks). */
  private async sftp(stream: ServerChannel): Promise<void> {
    try {
      await this.sessionP;
      const up = await this.upstream;
      const [upStream, home, masker] = await Promise.all([
        new Promise<ClientChannel>((resolve, reject) => up.subsys('sftp', (err, ch) => (err ? reject(err) : resolve(ch)))),
        homeDirectory(up),
        this.maskerFactory(),
      ]);
      relaySftp(stream, upStream, { session: this.session, home, masker });
    } catch (e) {
      this.fail(stream, e);
    }
  }

  /** ssh -L: only to destinations a rule allows (with no rule naming it, a forward is refused). */
  async forward(accept: AcceptConnection<ServerChannel>, reject: RejectConnection, info: TcpipRequestInfo): Promise<void> {
    try {
      await this.sessionP;
      // Judged, and asked of the target, in one spelling: `127.1` is 127.0.0.1 to the target's getaddrinfo.
      const host = forwardHost(info.destIP);
      if (host === null) {
        this.session.record({ type: 'ssh.forward', host: info.destIP, port: info.destPort, decision: 'deny', reason: 'not a host name or an IP address' });
        return reject();
      }
      const d = await this.session.check({ kind: 'forward', host, port: info.destPort });
      const allowed = d.effect === 'allow' && d.rules.length > 0;
      this.session.record({ type: 'ssh.forward', host, port: info.destPort, decision: allowed ? 'allow' : 'deny', ...(d.effect === 'deny' ? { rule: d.rule } : {}) });
      if (!allowed) return reject();
      const up = await this.upstreamWith('permit-port-forwarding');
      const upCh = await new Promise<ClientChannel>((resolve, rej) => up.forwardOut(info.srcIP, info.srcPort, host, info.destPort, (err, ch) => (err ? rej(err) : resolve(ch))));
      const ch = accept();
      ch.pipe(upCh).pipe(ch);
    } catch {
      reject();
    }
  }
}
