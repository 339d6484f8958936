/**
 * SFTP (draft-ietf-secsh-filexfer-02, version 3, as OpenSSH speaks it) seen from the
 * middle: packets framed in both directions, each request named as an operation on a
 * path so policy can judge it, and a STATUS reply airlock can put in the server's place.
 */
import { posix } from 'node:path';
import { AirlockError } from '../../src/errors.js';

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

export interface SftpRequest {
  id: number;
  type: number;
  /** What policy judges: an operation on a path (two for RENAME and SYMLINK). */
  ops: Array<{ op: string; path: string }>;
  /** An extension airlock does not know: answered OP_UNSUPPORTED, never forwarded. */
  unsupported?: boolean;
}

/** Extended requests that take a handle or nothing (OpenSSH's PROTOCOL, section 4). */
const PATHLESS_EXTENSIONS = new Set(['fsync@openssh.com', 'fstatvfs@openssh.com', 'limits@openssh.com', 'copy-data', 'users-groups-by-id@openssh.com']);

/** Request packets from the client. INIT (no id) and handle-based requests have no path to judge. */
export function describeRequest(packet: Buffer, resolvePath: (p: string) => string): SftpRequest | null {
  const type = packet[4] ?? 0;
  if (type === SFTP.INIT) return null;
  const r = new Reader(packet, 5);
  const id = r.u32();
  const one = (op: string): SftpRequest => ({ id, type, ops: [{ op, path: resolvePath(r.string()) }] });
  switch (type) {
    case SFTP.OPEN: {
      const path = resolvePath(r.string());
      const flags = r.u32();
      const writes = (flags & (FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC)) !== 0;
      return { id, type, ops: [{ op: writes ? 'write' : 'read', path }] };
    }
    case SFTP.OPENDIR: return one('list');
    case SFTP.REMOVE: return one('remove');
    case SFTP.MKDIR: return one('mkdir');
    case SFTP.RMDIR: return one('rmdir');
    case SFTP.SETSTAT: return one('setstat');
    case SFTP.STAT: case SFTP.LSTAT: case SFTP.READLINK: return one('stat');
    case SFTP.REALPATH: return one('stat');
    case SFTP.RENAME: {
      const from = resolvePath(r.string());
      const to = resolvePath(r.string());
      return { id, type, ops: [{ op: 'rename', path: from }, { op: 'rename', path: to }] };
    }
    case SFTP.SYMLINK: {
      // OpenSSH sends (targetpath, linkpath), reversed from the draft; judge both.
      const a = resolvePath(r.string());
      const b = resolvePath(r.string());
      return { id, type, ops: [{ op: 'symlink', path: a }, { op: 'symlink', path: b }] };
    }
    case SFTP.EXTENDED: {
      const name = r.string();
      if (name === 'posix-rename@openssh.com') {
        const from = resolvePath(r.string());
        const to = resolvePath(r.string());
        return { id, type, ops: [{ op: 'rename', path: from }, { op: 'rename', path: to }] };
      }
      if (name === 'hardlink@openssh.com') {
        const from = resolvePath(r.string());
        const to = resolvePath(r.string());
        return { id, type, ops: [{ op: 'link', path: from }, { op: 'link', path: to }] };
      }
      if (name === 'statvfs@openssh.com' || name === 'expand-path@openssh.com') return { id, type, ops: [{ op: 'stat', path: resolvePath(r.string()) }] };
      if (name === 'lsetstat@openssh.com') return { id, type, ops: [{ op: 'setstat', path: resolvePath(r.string()) }] };
      // Handle-based or path-free: their handles were judged when opened.
      if (PATHLESS_EXTENSIONS.has(name)) return { id, type, ops: [{ op: `extended:${name}`, path: '' }] };
      // An extension airlock cannot read may name a path: refused (fail closed).
      return { id, type, ops: [], unsupported: true };
    }
    default:
      return { id, type, ops: [] };
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
