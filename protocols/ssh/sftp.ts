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
}

export interface SftpRequest {
  id: number;
  type: number;
  /** What policy judges: an operation on a path (two for RENAME and SYMLINK). */
  ops: Array<{ op: string; path: string }>;
  /** The raw path of a REALPATH request (to learn the home directory). */
  realpath?: string;
}

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
    case SFTP.REALPATH: {
      const raw = r.string();
      return { id, type, ops: [{ op: 'stat', path: resolvePath(raw) }], realpath: raw };
    }
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
      // Handle-based extensions (fsync, fstatvfs, limits, lsetstat, copy-data …): their handles were judged when opened.
      return { id, type, ops: [{ op: `extended:${name}`, path: '' }] };
    }
    default:
      return { id, type, ops: [] };
  }
}

/** The first name of a NAME reply (what REALPATH answered). */
export function firstName(packet: Buffer): { id: number; name: string } | null {
  if (packet[4] !== SFTP.NAME) return null;
  try {
    const r = new Reader(packet, 5);
    const id = r.u32();
    const count = r.u32();
    if (count < 1) return null;
    return { id, name: r.string() };
  } catch {
    return null;
  }
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
