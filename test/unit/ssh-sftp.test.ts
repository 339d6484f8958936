/** SFTP packets airlock builds and reads for masked reads, extensions it refuses, and the byte/text bridge for the maskers. */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { SFTP, dataPacket, dataReply, describeRequest, handleReply, packetId, parseRead, readPacket, requestHandle, statusCode, statusPacket } from '../../protocols/ssh/sftp.js';
import { bytesOfText, textOfBytes } from '../../protocols/ssh/latin1.js';

const str = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const l = Buffer.alloc(4);
  l.writeUInt32BE(b.length);
  return Buffer.concat([l, b]);
};
/** Built by hand (draft-ietf-secsh-filexfer-02 §3), independent of the encoders under test. */
const packet = (type: number, id: number, ...parts: Buffer[]): Buffer => {
  const idb = Buffer.alloc(4);
  idb.writeUInt32BE(id);
  const body = Buffer.concat([Buffer.from([type]), idb, ...parts]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
};

describe('SFTP packets for masked reads', () => {
  const handle = randomBytes(9);
  it('READ: what airlock writes is what a hand-built packet says', () => {
    const off = Buffer.alloc(8);
    off.writeBigUInt64BE(5_000_000_000n);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(65536);
    const expected = packet(SFTP.READ, 0xfffffffe, str(handle), off, len);
    expect(readPacket(0xfffffffe, handle, 5_000_000_000, 65536).equals(expected)).toBe(true);
    expect(parseRead(expected)).toEqual({ id: 0xfffffffe, handle, offset: 5_000_000_000, len: 65536 });
    expect(requestHandle(packet(SFTP.CLOSE, 3, str(handle))).equals(handle)).toBe(true);
  });

  it('DATA, HANDLE and STATUS replies', () => {
    const data = randomBytes(100);
    expect(dataPacket(9, data).equals(packet(SFTP.DATA, 9, str(data)))).toBe(true);
    expect(dataReply(packet(SFTP.DATA, 9, str(data))).equals(data)).toBe(true);
    expect(handleReply(packet(SFTP.HANDLE, 2, str(handle))).equals(handle)).toBe(true);
    expect(statusCode(statusPacket(4, 1, 'EOF'))).toBe(1);
    expect(packetId(statusPacket(77, 1, 'EOF'))).toBe(77);
    expect(packetId(packet(SFTP.INIT, 3))).toBeNull();
  });

  it('short or lying packets are a protocol error, not a crash', () => {
    const truncated = readPacket(1, handle, 0, 10).subarray(0, 20);
    expect(() => parseRead(truncated)).toThrow(/short SFTP/);
    const huge = Buffer.alloc(8);
    huge.writeBigUInt64BE(2n ** 63n);
    expect(() => parseRead(packet(SFTP.READ, 1, str(handle), huge, Buffer.alloc(4)))).toThrow(/out of range/);
  });
});

describe('SFTP extensions', () => {
  const home = (p: string): string => (p.startsWith('/') ? p : `/home/u/${p}`);
  it('lsetstat names its path; handle-based ones pass; unknown ones are refused', () => {
    expect(describeRequest(packet(SFTP.EXTENDED, 1, str('lsetstat@openssh.com'), str('x'), Buffer.alloc(4)), home)?.ops).toEqual([{ op: 'setstat', path: '/home/u/x' }]);
    expect(describeRequest(packet(SFTP.EXTENDED, 2, str('fsync@openssh.com'), str('h')), home)?.unsupported).toBeUndefined();
    expect(describeRequest(packet(SFTP.EXTENDED, 3, str('made-up@example.com'), str('/etc/passwd')), home)?.unsupported).toBe(true);
  });
});

describe('SFTP requests as policy judges them (issue 27 item 4)', () => {
  const home = (p: string): string => (p.startsWith('/') ? p : `/home/u/${p}`);
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const open = (flags: number) => describeRequest(packet(SFTP.OPEN, 1, str('/srv/f'), u32(flags), u32(0)), home);

  it('OPEN: any handle that can read is readable (0x03 and 0 too, as sftp-server opens O_RDONLY); writes judged beside reads', () => {
    expect(open(0x01)).toMatchObject({ ops: [{ op: 'read', path: '/srv/f' }], open: { readable: true, writes: false } });
    expect(open(0x03)).toMatchObject({ ops: [{ op: 'read', path: '/srv/f' }, { op: 'write', path: '/srv/f' }], open: { readable: true, writes: true } });
    expect(open(0x00)).toMatchObject({ ops: [{ op: 'read', path: '/srv/f' }], open: { readable: true, writes: false } });
    expect(open(0x1a)).toMatchObject({ ops: [{ op: 'write', path: '/srv/f' }], open: { readable: false, writes: true } });
    // TRUNC without WRITE still truncates: a write, and the handle reads.
    expect(open(0x10)).toMatchObject({ ops: [{ op: 'read', path: '/srv/f' }, { op: 'write', path: '/srv/f' }] });
  });

  it('requests on a handle name it, with what is judged by its path', () => {
    const h = Buffer.from([0, 0, 0, 7]);
    expect(describeRequest(packet(SFTP.FSETSTAT, 2, str(h), u32(0)), home)).toMatchObject({ ops: [], handles: [{ handle: h, op: 'setstat' }] });
    expect(describeRequest(packet(SFTP.FSTAT, 3, str(h)), home)).toMatchObject({ handles: [{ handle: h, op: 'stat' }] });
    expect(describeRequest(packet(SFTP.READ, 4, str(h), Buffer.alloc(8), u32(10)), home)).toMatchObject({ handles: [{ handle: h, op: null }] });
    expect(describeRequest(packet(SFTP.WRITE, 5, str(h), Buffer.alloc(8), str('x')), home)).toMatchObject({ handles: [{ handle: h, op: null }] });
    expect(describeRequest(packet(SFTP.EXTENDED, 6, str('fsync@openssh.com'), str(h)), home)).toMatchObject({ handles: [{ handle: h, op: 'write' }] });
    const to = Buffer.from([0, 0, 0, 8]);
    expect(describeRequest(packet(SFTP.EXTENDED, 7, str('copy-data'), str(h), Buffer.alloc(16), str(to), Buffer.alloc(8)), home)).toMatchObject({
      handles: [{ handle: h, op: 'read', copySource: true }, { handle: to, op: 'write' }],
    });
  });

  it('extensions with neither path nor handle pass; unknown request types are refused', () => {
    expect(describeRequest(packet(SFTP.EXTENDED, 8, str('limits@openssh.com')), home)).toMatchObject({ ops: [], handles: [] });
    expect(describeRequest(packet(SFTP.EXTENDED, 9, str('home-directory'), str('u')), home)?.unsupported).toBeUndefined();
    expect(describeRequest(packet(SFTP.EXTENDED, 10, str('expand-path@openssh.com'), str('~/x')), home)?.ops).toEqual([{ op: 'stat', path: '/home/u/~/x' }]);
    expect(describeRequest(packet(99, 11, str('/etc/passwd')), home)?.unsupported).toBe(true);
  });
});

describe('bytes through the text maskers', () => {
  it('every byte value survives the round trip, binary and split UTF-8 alike', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(bytesOfText(textOfBytes(all)).equals(all)).toBe(true);
    const euro = Buffer.from('€');
    expect(Buffer.concat([bytesOfText(textOfBytes(euro.subarray(0, 1))), bytesOfText(textOfBytes(euro.subarray(1)))]).toString()).toBe('€');
  });

  it('a masking method\'s own text beyond latin1 is written as UTF-8', () => {
    expect(bytesOfText(`${textOfBytes(Buffer.from([0xff]))}→x`).equals(Buffer.concat([Buffer.from([0xff]), Buffer.from('→x')]))).toBe(true);
  });
});

describe('typed lines of a shell', () => {
  it('Enter ends a line; Backspace, ^U, ^W and ^C edit it; escape sequences and Tab make it inexact', async () => {
    const { TypedLines } = await import('../../protocols/ssh/typed-lines.js');
    const t = new TypedLines();
    expect(t.push('ls -l\r')).toEqual([{ line: 'ls -l', exact: true }]);
    expect(t.push('rmx\x7f -rf /tmp/a\r')).toEqual([{ line: 'rm -rf /tmp/a', exact: true }]);
    expect(t.push('whoami\x15id\r')).toEqual([{ line: 'id', exact: true }]);
    expect(t.push('echo one two\x17three\r')).toEqual([{ line: 'echo one three', exact: true }]);
    expect(t.push('rm -rf /\x03')).toEqual([]);
    expect(t.push('\r')).toEqual([]);
    expect(t.push('\x1b[A\r')).toEqual([{ line: '', exact: false }]);
    expect(t.push('cat /etc/pas\twd\r')).toEqual([{ line: 'cat /etc/paswd', exact: false }]);
    // Split anywhere, even inside an escape sequence.
    const u = new TypedLines();
    const got = [...'ab\x1b[1;5Dc\rdef\r'].flatMap((ch) => u.push(ch));
    expect(got).toEqual([{ line: 'abc', exact: false }, { line: 'def', exact: true }]);
  });
});
