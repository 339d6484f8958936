/**
 * The SFTP relay between a caller's `sftp` subsystem channel and the target's. Every
 * request that names a path is an action policy judges; a refused one is answered
 * PERMISSION_DENIED in the server's place and the session goes on.
 *
 * Request ids are airlock's own upstream (each forwarded request gets a fresh id, mapped
 * back on the reply), so airlock can put requests of its own on the same channel.
 *
 * Where the session's mask plan has detectors, a file opened for reading is served as a
 * masked stream: airlock reads it upstream itself, start to end, through a StreamMasker
 * (correct across READ boundaries), and answers the caller's READs from the masked bytes.
 * The masked file may be shorter or longer than the original; offsets are the masked
 * file's. Reads must go forward (OpenSSH's sftp and scp do); a seek backwards past what
 * is kept fails the READ.
 *
 * Handles are airlock's to know: the target's HANDLE replies are kept with the path and
 * the verdict of their OPEN, and a request naming a handle (READ, WRITE, FSTAT, FSETSTAT,
 * fsync, copy-data …) waits until every OPEN in flight has its reply. A handle airlock
 * does not know then — a guessed one pipelined behind its OPEN, or a closed one — is
 * answered FAILURE and never reaches the target; a known one is judged by its path.
 */
import type { ClientChannel, ServerChannel } from 'ssh2';
import type { Session } from '../../src/core/session-types.js';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import type { StreamMasker } from '../../src/masking/index.js';
import {
  SftpFramer, SFTP, FX_EOF, FX_FAILURE, FX_OP_UNSUPPORTED, FX_PERMISSION_DENIED,
  absolutePath, dataPacket, dataReply, describeRequest, handleReply, packetId, parseRead, readPacket, statusCode, statusPacket,
} from './sftp.js';
import { bytesOfText, textOfBytes } from './latin1.js';

/** Bytes airlock asks for per upstream READ of a masked file. */
const MASKED_READ_CHUNK = 64 * 1024;
/** Masked bytes kept ahead of what the caller has read (OpenSSH keeps ≤ 64 × 32 KiB in flight). */
const MASKED_WINDOW = 8 * 1024 * 1024;
/** Requests judged but not yet forwarded before the caller's channel is paused. */
const QUEUE_HIGH = 64;
const QUEUE_LOW = 16;

interface MaskedFile {
  readonly handle: Buffer;
  readonly masker: StreamMasker;
  /** Where the next upstream READ starts, in the original file. */
  rawOffset: number;
  /** Masked bytes from `base` (an offset in the masked file) not yet dropped. */
  out: Buffer;
  base: number;
  eof: boolean;
  fetching: boolean;
  failed: number | null;
  readonly waiting: Array<{ id: number; offset: number; len: number }>;
}

/** A handle the target returned to an OPEN or OPENDIR airlock judged. */
interface OpenHandle {
  readonly path: string;
  /** Served through a masker (opened with read access while the session masks). */
  readonly masked: MaskedFile | null;
}

type Pending =
  | { kind: 'client'; clientId: number }
  | { kind: 'open'; clientId: number; path: string; mask: boolean }
  | { kind: 'masked-read'; file: MaskedFile };

export interface SftpRelayOptions {
  session: Session;
  /** The login's home directory on the target (what relative paths resolve against), or null if unknown. */
  home: string | null;
  /** A fresh masker for a file read, or null when the session masks nothing. */
  masker: () => StreamMasker | null;
}

export function relaySftp(stream: ServerChannel, upStream: ClientChannel, o: SftpRelayOptions): void {
  const { session, home } = o;
  const fromClient = new SftpFramer();
  const fromServer = new SftpFramer();
  const pending = new Map<number, Pending>();
  const handles = new Map<string, OpenHandle>();
  /** OPEN/OPENDIR requests forwarded whose reply has not come back, and who waits for none to be. */
  let opening = 0;
  let openingSettled: Array<() => void> = [];
  const openSettled = (): Promise<void> => (opening === 0 ? Promise.resolve() : new Promise((r) => openingSettled.push(r)));
  let nextId = 1;
  let chain: Promise<void> = Promise.resolve();
  let queued = 0;
  /** Too many requests judged but not yet done (hysteresis between QUEUE_HIGH and QUEUE_LOW). */
  let queueFull = false;
  let closed = false;
  let drained: Array<() => void> = [];

  /**
   * The caller's requests are read only while the queue has room and the caller's channel
   * is not full: a refused request is answered by airlock itself, so a caller that sends
   * and never reads would otherwise have its replies buffered without bound.
   */
  const reading = (): void => {
    if (queueFull || stream.writableNeedDrain) stream.pause();
    else stream.resume();
  };
  /** Every packet to the caller goes here: a full channel stops both directions until it drains. */
  const toClient = (packet: Buffer): void => {
    if (!stream.write(packet)) {
      upStream.pause();
      stream.pause();
    }
  };
  const clientDrained = (): Promise<void> =>
    (!stream.writableNeedDrain || closed ? Promise.resolve() : new Promise((r) => drained.push(r)));
  const toServer = async (packet: Buffer): Promise<void> => {
    if (!upStream.write(packet)) await new Promise((r) => upStream.once('drain', r));
  };
  /** Forwards a request under a fresh upstream id. */
  const forward = async (packet: Buffer, p: Pending): Promise<void> => {
    const id = nextId;
    nextId = (nextId + 1) >>> 0 || 1;
    pending.set(id, p);
    packet.writeUInt32BE(id, 5);
    await toServer(packet);
  };

  const resolve = (p: string): string => {
    // A C server reads the path up to the NUL, not the rest airlock would judge.
    if (p.includes('\0')) throw new AirlockError('AIRLOCK_DENIED', 'a path with a NUL byte is refused');
    if (!p.startsWith('/') && home === null) throw new AirlockError('AIRLOCK_DENIED', 'the home directory on the target is unknown: use absolute paths');
    return absolutePath(p, home);
  };

  // ---- masked reads ---------------------------------------------------------

  const fetch = (f: MaskedFile): void => {
    if (f.fetching || f.eof || f.failed !== null) return;
    f.fetching = true;
    const id = nextId;
    nextId = (nextId + 1) >>> 0 || 1;
    pending.set(id, { kind: 'masked-read', file: f });
    void toServer(readPacket(id, f.handle, f.rawOffset, MASKED_READ_CHUNK));
  };

  const pump = (f: MaskedFile): void => {
    while (f.waiting.length > 0) {
      const r = f.waiting[0];
      if (r === undefined) break;
      const have = f.base + f.out.length;
      if (f.failed !== null) {
        toClient(statusPacket(r.id, f.failed, 'airlock: the masked read failed'));
      } else if (r.offset < f.base) {
        toClient(statusPacket(r.id, FX_FAILURE, 'airlock: a masked file is read from start to end'));
      } else if (r.offset < have && (r.offset + r.len <= have || f.eof)) {
        const start = r.offset - f.base;
        const n = Math.min(r.len, have - r.offset);
        toClient(dataPacket(r.id, f.out.subarray(start, start + n)));
        if (start === 0) {
          f.out = f.out.subarray(n);
          f.base += n;
        }
      } else if (f.eof) {
        toClient(statusPacket(r.id, FX_EOF, 'EOF'));
      } else if (f.out.length > MASKED_WINDOW) {
        f.failed = FX_FAILURE;
        continue;
      } else {
        fetch(f);
        return;
      }
      f.waiting.shift();
    }
  };

  const maskedChunk = (f: MaskedFile, reply: Buffer): void => {
    f.fetching = false;
    const type = reply[4];
    if (type === SFTP.DATA) {
      const data = dataReply(reply);
      f.rawOffset += data.length;
      const text = f.masker.push(textOfBytes(data));
      if (text !== '') f.out = Buffer.concat([f.out, bytesOfText(text)]);
    } else if (type === SFTP.STATUS && statusCode(reply) === FX_EOF) {
      f.eof = true;
      const text = f.masker.end();
      if (text !== '') f.out = Buffer.concat([f.out, bytesOfText(text)]);
    } else {
      f.failed = type === SFTP.STATUS ? statusCode(reply) : FX_FAILURE;
    }
    pump(f);
  };

  // ---- requests from the caller -----------------------------------------------

  const deny = (id: number, code: number, message: string): void => toClient(statusPacket(id, code, `airlock: ${message}`));

  const judge = async (packet: Buffer): Promise<void> => {
    const type = packet[4];
    const id = packetId(packet);
    if (id === null) return toServer(packet); // INIT
    let req;
    try {
      req = describeRequest(packet, resolve);
    } catch (e) {
      const err = asAirlockError(e);
      if (err.code !== 'AIRLOCK_DENIED') throw err;
      session.record({ type: 'ssh.sftp', decision: 'deny', reason: err.message });
      return deny(id, FX_PERMISSION_DENIED, err.message);
    }
    if (req === null) return toServer(packet);
    if (req.unsupported === true) {
      session.record({ type: 'ssh.sftp', op: `type:${type ?? 0}`, decision: 'deny', reason: 'not supported' });
      return deny(id, FX_OP_UNSUPPORTED, 'this request is not supported');
    }
    const checks = [...req.ops];
    let used: OpenHandle | undefined;
    for (const h of req.handles) {
      // A handle only counts once the target named it in reply to an OPEN airlock judged.
      const key = h.handle.toString('hex');
      if (!handles.has(key)) await openSettled();
      const known = handles.get(key);
      if (known === undefined) return deny(id, FX_FAILURE, 'no such handle');
      if (h.copySource === true && known.masked !== null) return deny(id, FX_PERMISSION_DENIED, 'a masked file cannot be copied on the target');
      if (h.op !== null) checks.push({ op: h.op, path: known.path });
      used ??= known;
    }
    for (const { op, path } of checks) {
      const d = await session.check({ kind: 'sftp', op, path });
      if (d.effect === 'deny') {
        session.record({ type: 'ssh.sftp', op, path, decision: 'deny', rule: d.rule });
        return deny(id, FX_PERMISSION_DENIED, `denied by rule ${d.rule}: ${d.reason}`);
      }
    }
    if (type === SFTP.READ && used?.masked != null) {
      const r = parseRead(packet);
      used.masked.waiting.push({ id: r.id, offset: r.offset, len: Math.min(r.len, 256 * 1024) });
      return pump(used.masked);
    }
    if (type === SFTP.CLOSE) handles.delete(req.handles[0]?.handle.toString('hex') ?? '');
    if (type === SFTP.OPEN || type === SFTP.OPENDIR) {
      opening++;
      const path = req.ops[0]?.path ?? '';
      // Masking is decided here, for any handle that can read, whatever else it may do.
      const mask = req.open?.readable === true && session.maskPlan.detectors.length > 0;
      return forward(packet, { kind: 'open', clientId: id, path, mask });
    }
    await forward(packet, { kind: 'client', clientId: id });
  };

  stream.on('data', (d: Buffer) => {
    try {
      fromClient.push(d, (packet) => {
        queued++;
        if (queued > QUEUE_HIGH) {
          queueFull = true;
          reading();
        }
        chain = chain
          // Nothing more is judged (and so answered) while the caller's channel is full.
          .then(() => clientDrained())
          .then(() => judge(packet))
          .catch((e: unknown) => {
            session.logger.warn({ code: asAirlockError(e).code }, 'sftp request failed');
            stream.close();
          })
          .finally(() => {
            queued--;
            if (queueFull && queued <= QUEUE_LOW) {
              queueFull = false;
              reading();
            }
          });
      });
    } catch {
      stream.close();
    }
  });

  // ---- replies from the target --------------------------------------------------

  upStream.on('data', (d: Buffer) => {
    try {
      fromServer.push(d, (packet) => {
        const id = packetId(packet);
        const p = id === null ? undefined : pending.get(id);
        if (id === null || p === undefined) return toClient(packet); // VERSION
        pending.delete(id);
        if (p.kind === 'masked-read') return maskedChunk(p.file, packet);
        if (p.kind === 'open') {
          if (packet[4] === SFTP.HANDLE) {
            const handle = Buffer.from(handleReply(packet));
            const masker = p.mask ? o.masker() : null;
            const file: MaskedFile | null = masker === null ? null : { handle, masker, rawOffset: 0, out: Buffer.alloc(0), base: 0, eof: false, fetching: false, failed: null, waiting: [] };
            handles.set(handle.toString('hex'), { path: p.path, masked: file });
          }
          if (--opening === 0) {
            const waiting = openingSettled;
            openingSettled = [];
            for (const w of waiting) w();
          }
        }
        packet.writeUInt32BE(p.clientId, 5);
        toClient(packet);
      });
    } catch {
      stream.close();
    }
  });
  stream.on('drain', () => {
    upStream.resume();
    reading();
    const waiting = drained;
    drained = [];
    for (const w of waiting) w();
  });
  stream.on('end', () => void chain.then(() => upStream.end()));
  upStream.on('close', () => stream.close());
  upStream.on('exit', (c: number | null) => {
    if (typeof c === 'number') stream.exit(c);
  });
  stream.on('close', () => {
    closed = true;
    const waiting = drained;
    drained = [];
    for (const w of waiting) w();
    upStream.close();
  });
  stream.resume();
}
