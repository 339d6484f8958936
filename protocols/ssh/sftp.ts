/**
 * SFTP (draft-ietf-secsh-filexfer-02, version 3, as OpenSSH speaks it) seen from the
 * middle: packets framed in both directions, each request named as an operation on a
 * path so policy can judge it, and a STATUS reply airlock can put in the server's place.
 */
import { posix } from 'node:path';
import { AirlockError } from '../../src/util/errors.js';

export const SFTP = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10,
  OPENDIR: 11, READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18,
  READLINK: 19, SYMLINK: 20, STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105, EXTENDED: 200, EXTENDED_REPLY: 201,
} as const;

/** SSH_FXF_* open flags. */
const FXF_WRITE = 0x02;
const FXF_APPEND = 0x04;
const FXF_CREAT = 0x08;
const FXF_TRUNC = 0x10;

/** SSH_FX_* status codes. */
export const FX_EOF = 1;
export const FX_FAILURE = 4;
export const FX_PERMISSION_DENIED = 3;
export const FX_OP_UNSUPPORTED = 8;

/** Largest SFTP packet accepted in either direction (OpenSSH's own limit is 256 KiB). */
const MAX_PACKET = 1024 * 1024;

/** Splits a byte stream into whole SFTP packets (length prefix included). */
export class SftpFramer {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onPacket: (packet: Buffer) => void): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len > MAX_PACKET || len < 1) throw new AirlockError('AIRLOCK_PROTOCOL', 'malformed SFTP packet length', { fatal: true });
      if (this.buf.length < 4 + len) break;
      const packet = this.buf.subarray(0, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      onPacket(packet);
    }
  }
}

class Reader {
  private off: number;
  constructor(private readonly p: Buffer, start: number) {
    this.off = start;
  }
  u32(): number {
    if (this.off + 4 > this.p.length) throw new AirlockError('AIRLOCK_PROTOCOL', 'short SFTP packet', { fatal: true });
    const v = this.p.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  string(): string {
    const n = this.u32();
    if (this.off + n > this.p.length) throw new AirlockError('AIRLOCK_PROTOCOL', 'short SFTP string', { fatal: true });
    const s = this.p.toString('utf8', this.off, this.off + n);
    this.off += n;
    return s;
  }
  bytes(): Buffer {
    const n = this.u32();
    if (this.off + n > this.p.length) throw new AirlockError('AIRLOCK_PROTOCOL', 'short SFTP string', { fatal: true });
    const b = this.p.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
  u64(): number {
    if (this.off + 8 > this.p.length) throw new AirlockError('AIRLOCK_PROTOCOL', 'short SFTP packet', { fatal: true });
    const v = this.p.readBigUInt64BE(this.off);
    this.off += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new AirlockError('AIRLOCK_PROTOCOL', 'SFTP offset out of range', { fatal: true });
    return Number(v);
  }
}

/** A handle a request works on, and what policy judges about it (null: judged when it was opened). */
export interface HandleUse {
  handle: Buffer;
  op: string | null;
  /** copy-data's source: a masked file cannot be its source (the copy would hold the raw bytes). */
  copySource?: boolean;
}

export interface SftpRequest {
  id: number;
  type: number;
  /** What policy judges: an operation on a path (two for RENAME and SYMLINK, read and write for an OPEN of both). */
  ops: Array<{ op: string; path: string }>;
  /** Handles the request names: each must be one the target returned to an OPEN airlock judged. */
  handles: HandleUse[];
  /** OPEN: whether the file can be read through the handle (masking is decided here) and written. */
  open?: { readable: boolean; writes: boolean };
  /** An extension airlock does not know: answered OP_UNSUPPORTED, never forwarded. */
  unsupported?: boolean;
}

/** SSH_FXF_READ. */
const FXF_READ = 0x01;

/** Extended requests with neither a path nor a handle (OpenSSH's PROTOCOL, section 4). */
const PLAIN_EXTENSIONS = new Set(['limits@openssh.com', 'users-groups-by-id@openssh.com', 'home-directory']);

/** Request packets from the client. INIT (no id) has nothing to judge. */
export function describeRequest(packet: Buffer, resolvePath: (p: string) => string): SftpRequest | null {
  const type = packet[4] ?? 0;
  if (type === SFTP.INIT) return null;
  const r = new Reader(packet, 5);
  const id = r.u32();
  const base = { id, type, handles: [] as HandleUse[] };
  const one = (op: string): SftpRequest => ({ ...base, ops: [{ op, path: resolvePath(r.string()) }] });
  const onHandle = (op: string | null): SftpRequest => ({ ...base, ops: [], handles: [{ handle: r.bytes(), op }] });
  const two = (op: string): SftpRequest => {
    const from = resolvePath(r.string());
    const to = resolvePath(r.string());
    return { ...base, ops: [{ op, path: from }, { op, path: to }] };
  };
  switch (type) {
    case SFTP.OPEN: {
      const path = resolvePath(r.string());
      const flags = r.u32();
      // sftp-server opens O_RDONLY when READ and WRITE are both absent: such a handle reads too.
      const readable = (flags & FXF_READ) !== 0 || (flags & FXF_WRITE) === 0;
      const writes = (flags & (FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC)) !== 0;
      const ops = [...(readable ? [{ op: 'read', path }] : []), ...(writes ? [{ op: 'write', path }] : [])];
      return { ...base, ops, open: { readable, writes } };
    }
    case SFTP.OPENDIR: return one('list');
    case SFTP.REMOVE: return one('remove');
    case SFTP.MKDIR: return one('mkdir');
    case SFTP.RMDIR: return one('rmdir');
    case SFTP.SETSTAT: return one('setstat');
    case SFTP.STAT: case SFTP.LSTAT: case SFTP.READLINK: return one('stat');
    case SFTP.REALPATH: return one('stat');
    case SFTP.RENAME: return two('rename');
    // OpenSSH sends (targetpath, linkpath), reversed from the draft; judge both.
    case SFTP.SYMLINK: return two('symlink');
    // Reads and writes were judged when the handle was opened (a masked READ is served by airlock).
    case SFTP.READ: case SFTP.WRITE: case SFTP.CLOSE: case SFTP.READDIR: return onHandle(null);
    case SFTP.FSTAT: return onHandle('stat');
    case SFTP.FSETSTAT: return onHandle('setstat');
    case SFTP.EXTENDED: {
      const name = r.string();
      switch (name) {
        case 'posix-rename@openssh.com': return two('rename');
        case 'hardlink@openssh.com': return two('link');
        case 'statvfs@openssh.com': case 'expand-path@openssh.com': return one('stat');
        case 'lsetstat@openssh.com': return one('setstat');
        case 'fstatvfs@openssh.com': return onHandle('stat');
        // Makes what was written durable: judged as a write to the handle's file.
        case 'fsync@openssh.com': return onHandle('write');
        case 'copy-data': {
          // handle read-from, uint64 offset, uint64 length, handle write-to, uint64 offset
          const from = r.bytes();
          r.u64();
          r.u64();
          const to = r.bytes();
          return { ...base, ops: [], handles: [{ handle: from, op: 'read', copySource: true }, { handle: to, op: 'write' }] };
        }
        default:
          if (PLAIN_EXTENSIONS.has(name)) return { ...base, ops: [] };
          // An extension airlock cannot read may name a path or a handle: refused (fail closed).
          return { ...base, ops: [], unsupported: true };
      }
    }
    default:
      // A request type airlock does not know: refused, never forwarded.
      return { ...base, ops: [], unsupported: true };
  }
}

/** The request id of any packet but INIT/VERSION (bytes 5..8), or null. */
export function packetId(packet: Buffer): number | null {
  const type = packet[4];
  return type === SFTP.INIT || type === SFTP.VERSION || packet.length < 9 ? null : packet.readUInt32BE(5);
}

/** READ: `uint32 id, string handle, uint64 offset, uint32 len`. */
export function parseRead(packet: Buffer): { id: number; handle: Buffer; offset: number; len: number } {
  const r = new Reader(packet, 5);
  const id = r.u32();
  const handle = r.bytes();
  const offset = r.u64();
  return { id, handle, offset, len: r.u32() };
}

/** The handle of a request that starts with one (READ, WRITE, CLOSE, FSTAT, …). */
export function requestHandle(packet: Buffer): Buffer {
  const r = new Reader(packet, 9);
  return r.bytes();
}

/** HANDLE reply: `uint32 id, string handle`. */
export function handleReply(packet: Buffer): Buffer {
  return requestHandle(packet);
}

/** DATA reply: `uint32 id, string data`. */
export function dataReply(packet: Buffer): Buffer {
  return requestHandle(packet);
}

/** STATUS reply: `uint32 id, uint32 code, …`. */
export function statusCode(packet: Buffer): number {
  return new Reader(packet, 9).u32();
}

export function readPacket(id: number, handle: Buffer, offset: number, len: number): Buffer {
  const out = Buffer.alloc(4 + 1 + 4 + 4 + handle.length + 8 + 4);
  let o = out.writeUInt32BE(out.length - 4, 0);
  o = out.writeUInt8(SFTP.READ, o);
  o = out.writeUInt32BE(id, o);
  o = out.writeUInt32BE(handle.length, o);
  o += handle.copy(out, o);
  o = out.writeBigUInt64BE(BigInt(offset), o);
  out.writeUInt32BE(len, o);
  return out;
}

export function dataPacket(id: number, data: Buffer): Buffer {
  const out = Buffer.alloc(4 + 1 + 4 + 4 + data.length);
  let o = out.writeUInt32BE(out.length - 4, 0);
  o = out.writeUInt8(SFTP.DATA, o);
  o = out.writeUInt32BE(id, o);
  o = out.writeUInt32BE(data.length, o);
  data.copy(out, o);
  return out;
}

export function statusPacket(id: number, code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const len = 1 + 4 + 4 + 4 + msg.length + 4;
  const out = Buffer.alloc(4 + len);
  let o = out.writeUInt32BE(len, 0);
  o = out.writeUInt8(SFTP.STATUS, o);
  o = out.writeUInt32BE(id, o);
  o = out.writeUInt32BE(code, o);
  o = out.writeUInt32BE(msg.length, o);
  o += msg.copy(out, o);
  out.writeUInt32BE(0, o);
  return out;
}

/** A path as the server will resolve it: absolute, `.`/`..` removed (symlinks on the target cannot be seen). */
export function absolutePath(raw: string, home: string | null): string {
  const base = raw.startsWith('/') ? raw : posix.join(home ?? '/', raw);
  const normal = posix.normalize(base);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}
