// Framing is checked against streams built by pg-protocol's serializer and by hand-written
// hex, never by our own encoders; every stream is split at every byte boundary.
import { describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { FrameReader, type Frame } from '../../protocols/postgres/codec/framing.js';
import { AirlockError } from '../../src/util/errors.js';

const LIMITS = { maxMessageBytes: 1 << 20, maxStartupBytes: 10_000 };
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

interface Seen { type: number; raw: string; payload: string }
const seen = (f: Frame): Seen => ({ type: f.type, raw: f.raw.toString('hex'), payload: f.payload.toString('hex') });

function frameAll(chunks: Buffer[], startup = false, onFrame?: (f: Frame, r: FrameReader) => void): { frames: Seen[]; reader: FrameReader } {
  const reader = new FrameReader({ ...LIMITS, startup });
  const frames: Seen[] = [];
  for (const c of chunks) reader.push(c, (f) => {
    frames.push(seen(f));
    onFrame?.(f, reader);
  });
  return { frames, reader };
}

function splits(stream: Buffer): Buffer[][] {
  const out: Buffer[][] = [[stream]];
  for (let i = 1; i < stream.length; i++) out.push([stream.subarray(0, i), stream.subarray(i)]);
  for (let i = 1; i < stream.length; i++) {
    for (let j = i + 1; j < stream.length; j += 7) out.push([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]);
  }
  out.push([...stream].map((b) => Buffer.from([b])));
  return out;
}

const clientStream = Buffer.concat([
  serialize.query('select 1'),
  serialize.parse({ name: 's1', text: 'select $1::int', types: [23] }),
  serialize.bind({ statement: 's1', values: ['42', null] }),
  serialize.describe({ type: 'P' }),
  serialize.execute({ rows: 0 }),
  serialize.sync(),
  serialize.copyData(Buffer.alloc(300, 7)),
  serialize.flush(),
  serialize.end(),
]);

// ParseComplete, BindComplete, RowDescription(1 col "a" int4), DataRow('1'), CommandComplete, ReadyForQuery(I)
const serverStream = hex(`
  31 00000004
  32 00000004
  54 0000001a 0001 6100 00000000 0000 00000017 0004 ffffffff 0000
  44 0000000b 0001 00000001 31
  43 0000000d 53454c45435420 3100
  5a 00000005 49`);

describe('FrameReader', () => {
  it('splits a client stream identically at every byte boundary and byte by byte', () => {
    const expected = frameAll([clientStream]).frames;
    expect(expected.map((f) => String.fromCharCode(f.type)).join('')).toBe('QPBDESdHX');
    for (const chunks of splits(clientStream)) {
      const { frames, reader } = frameAll(chunks);
      expect(frames).toEqual(expected);
      expect(reader.buffered).toBe(0);
    }
  });

  it('splits a server stream identically at every byte boundary', () => {
    const expected = frameAll([serverStream]).frames;
    expect(expected.map((f) => String.fromCharCode(f.type)).join('')).toBe('12TDCZ');
    expect(expected[3]).toEqual({ type: 0x44, raw: '440000000b00010000000131', payload: '00010000000131' });
    for (const chunks of splits(serverStream)) expect(frameAll(chunks).frames).toEqual(expected);
  });

  it('hands out views of the chunk, not copies, for frames inside one chunk', () => {
    const chunk = Buffer.from(serverStream);
    const reader = new FrameReader({ ...LIMITS, startup: false });
    const frames: Frame[] = [];
    reader.push(chunk, (f) => frames.push(f));
    for (const f of frames) {
      expect(f.raw.buffer).toBe(chunk.buffer);
      expect(f.payload.buffer).toBe(chunk.buffer);
      expect(f.payload.byteOffset).toBe(f.raw.byteOffset + 5);
    }
  });

  it('assembles a frame straddling chunks once and keeps the partial byte count', () => {
    const big = serialize.copyData(Buffer.alloc(5000, 1));
    const reader = new FrameReader({ ...LIMITS, startup: false });
    const frames: Frame[] = [];
    for (let off = 0; off < big.length; off += 1000) {
      reader.push(big.subarray(off, off + 1000), (f) => frames.push(f));
      if (off + 1000 < big.length) expect(reader.buffered).toBe(off + 1000);
    }
    expect(frames).toHaveLength(1);
    expect(frames[0]?.raw.equals(big)).toBe(true);
    expect(reader.buffered).toBe(0);
  });

  it('reads untyped startup packets until told otherwise, also from inside the callback', () => {
    const stream = Buffer.concat([serialize.requestSsl(), serialize.startup({ user: 'alice', database: 'db' }), serialize.password('tok'), serialize.sync()]);
    const switchAfterStartup = (f: Frame, r: FrameReader): void => {
      // The StartupMessage is the packet whose code is 3.0.
      if (f.type === 0 && f.payload.readInt32BE(0) === 196608) r.expectStartup(false);
    };
    const expected = frameAll([stream], true, switchAfterStartup).frames;
    expect(expected.map((f) => f.type)).toEqual([0, 0, 0x70, 0x53]);
    expect(expected[0]?.raw).toBe('0000000804d2162f');
    for (const chunks of splits(stream)) expect(frameAll(chunks, true, switchAfterStartup).frames).toEqual(expected);
  });

  it('drain() returns the incomplete tail and empties the reader', () => {
    const reader = new FrameReader({ ...LIMITS, startup: false });
    const q = serialize.query('select 1');
    reader.push(Buffer.concat([q, q.subarray(0, 6)]), () => undefined);
    expect(reader.buffered).toBe(6);
    expect(reader.drain().equals(q.subarray(0, 6))).toBe(true);
    expect(reader.buffered).toBe(0);
  });
});

function fatal(fn: () => void, code: 'AIRLOCK_PROTOCOL' | 'AIRLOCK_TOO_LARGE'): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AirlockError);
  expect((caught as AirlockError).code).toBe(code);
  expect((caught as AirlockError).fatal).toBe(true);
}

describe('FrameReader refuses bad lengths', () => {
  const typed = (): FrameReader => new FrameReader({ maxMessageBytes: 1000, maxStartupBytes: 100, startup: false });
  const startup = (): FrameReader => new FrameReader({ maxMessageBytes: 1000, maxStartupBytes: 100, startup: true });

  it('a typed length below 4', () => {
    for (const len of ['00000003', '00000000', 'ffffffff', '80000000']) fatal(() => typed().push(hex(`51 ${len}`), () => undefined), 'AIRLOCK_PROTOCOL');
  });

  it('a typed length above the cap, as soon as the header is in, whatever the split', () => {
    const header = hex('44 000003e9'); // 1001 > 1000
    for (let i = 1; i < header.length; i++) {
      const r = typed();
      r.push(header.subarray(0, i), () => undefined);
      fatal(() => r.push(header.subarray(i), () => undefined), 'AIRLOCK_TOO_LARGE');
    }
    fatal(() => typed().push(hex('44 7fffffff'), () => undefined), 'AIRLOCK_TOO_LARGE');
  });

  it('accepts a message exactly at the cap', () => {
    const frames: Frame[] = [];
    typed().push(Buffer.concat([hex('64 000003e8'), Buffer.alloc(996)]), (f) => frames.push(f));
    expect(frames).toHaveLength(1);
  });

  it('a type byte of 0 in the typed phase', () => {
    fatal(() => typed().push(hex('00 00000004'), () => undefined), 'AIRLOCK_PROTOCOL');
  });

  it('a startup packet shorter than 8 or longer than its own cap', () => {
    fatal(() => startup().push(hex('00000007 000000'), () => undefined), 'AIRLOCK_PROTOCOL');
    fatal(() => startup().push(hex('ffffffff'), () => undefined), 'AIRLOCK_PROTOCOL');
    fatal(() => startup().push(hex('00000065'), () => undefined), 'AIRLOCK_TOO_LARGE');
  });

  it('a bad frame after good ones in the same chunk still delivers the good ones first', () => {
    const frames: Frame[] = [];
    fatal(() => typed().push(Buffer.concat([serialize.sync(), hex('51 00000002')]), (f) => frames.push(f)), 'AIRLOCK_PROTOCOL');
    expect(frames).toHaveLength(1);
  });
});
