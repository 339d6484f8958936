/**
 * RFC 6455 framing (protocols/http/websocket-frames.ts). Expected bytes are the examples of
 * RFC 6455 §5.7 and frames written out by hand here (a masking loop of the test's own),
 * never the encoder's output; every input is also fed split at every byte boundary.
 */
import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameError, closePayload, encodeFrame, readClose, type Frame, type FrameDecoderOptions } from '../../protocols/http/websocket-frames.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const KEY = hex('37fa213d');

/** A client frame written out by hand: b0, then the mask bit with the length bytes, the key, the masked payload. */
function maskedFrame(b0: number, lengthBytes: Buffer, payload: Buffer, key = KEY): Buffer {
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = (payload[i] as number) ^ (key[i % 4] as number);
  const len = Buffer.from(lengthBytes);
  len[0] = (len[0] as number) | 0x80;
  return Buffer.concat([Buffer.from([b0]), len, key, body]);
}

type Seen = Pick<Frame, 'fin' | 'opcode' | 'message'> & { payload: string };

function decodeAll(parts: Buffer[], opts: FrameDecoderOptions): Seen[] {
  const seen: Seen[] = [];
  const d = new FrameDecoder(opts, (f) => seen.push({ fin: f.fin, opcode: f.opcode, message: f.message, payload: f.payload.toString('hex') }));
  for (const p of parts) d.push(p);
  expect(d.pending).toBe(0);
  return seen;
}

/** The same frames whole, split at every byte boundary, and one byte at a time. */
function expectEverySplit(bytes: Buffer, opts: FrameDecoderOptions, expected: Seen[]): void {
  expect(decodeAll([bytes], opts)).toEqual(expected);
  for (let i = 1; i < bytes.length; i++) expect(decodeAll([bytes.subarray(0, i), bytes.subarray(i)], opts), `split at ${i}`).toEqual(expected);
  expect(decodeAll([...bytes].map((b) => Buffer.from([b])), opts)).toEqual(expected);
}

const server = { maxPayload: 1024 * 1024, masked: false };
const client = { maxPayload: 1024 * 1024, masked: true };
const hello = Buffer.from('Hello').toString('hex');

describe('decoding RFC 6455 §5.7 examples, split at every byte boundary', () => {
  const cases: Array<[string, Buffer, FrameDecoderOptions, Seen[]]> = [
    ['a single-frame unmasked text message', hex('81 05 48656c6c6f'), server, [{ fin: true, opcode: 'text', message: 'text', payload: hello }]],
    ['a single-frame masked text message', hex('81 85 37fa213d 7f9f4d5158'), client, [{ fin: true, opcode: 'text', message: 'text', payload: hello }]],
    [
      'a fragmented unmasked text message',
      hex('01 03 48656c 80 02 6c6f'),
      server,
      [
        { fin: false, opcode: 'text', message: 'text', payload: Buffer.from('Hel').toString('hex') },
        { fin: true, opcode: 'continuation', message: 'text', payload: Buffer.from('lo').toString('hex') },
      ],
    ],
    ['an unmasked ping', hex('89 05 48656c6c6f'), server, [{ fin: true, opcode: 'ping', message: null, payload: hello }]],
    ['a masked pong', hex('8a 85 37fa213d 7f9f4d5158'), client, [{ fin: true, opcode: 'pong', message: null, payload: hello }]],
    ['256 bytes of binary (16-bit length)', Buffer.concat([hex('82 7e 0100'), Buffer.alloc(256, 7)]), server, [{ fin: true, opcode: 'binary', message: 'binary', payload: Buffer.alloc(256, 7).toString('hex') }]],
  ];
  for (const [name, bytes, opts, expected] of cases) it(name, () => expectEverySplit(bytes, opts, expected));

  it('64 KiB of binary (64-bit length), masked', () => {
    const payload = Buffer.alloc(65536);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const bytes = maskedFrame(0x82, hex('7f 0000000000010000'), payload);
    expect(decodeAll([bytes], client)).toEqual([{ fin: true, opcode: 'binary', message: 'binary', payload: payload.toString('hex') }]);
    for (const i of [1, 2, 5, 9, 10, 13, 14, 15, 1000, bytes.length - 1]) expect(decodeAll([bytes.subarray(0, i), bytes.subarray(i)], client)[0]?.payload).toBe(payload.toString('hex'));
  });

  it('a ping between the fragments of a message, then a close with a status code', () => {
    const bytes = Buffer.concat([
      maskedFrame(0x02, hex('02'), hex('0102')),
      maskedFrame(0x89, hex('00'), Buffer.alloc(0)),
      maskedFrame(0x00, hex('01'), hex('03')),
      maskedFrame(0x80, hex('01'), hex('04')),
      maskedFrame(0x88, hex('04'), hex('03e8 6f6b')),
    ]);
    expectEverySplit(bytes, client, [
      { fin: false, opcode: 'binary', message: 'binary', payload: '0102' },
      { fin: true, opcode: 'ping', message: null, payload: '' },
      { fin: false, opcode: 'continuation', message: 'binary', payload: '03' },
      { fin: true, opcode: 'continuation', message: 'binary', payload: '04' },
      { fin: true, opcode: 'close', message: null, payload: '03e86f6b' },
    ]);
    expect(readClose(hex('03e8 6f6b'))).toEqual({ code: 1000, reason: 'ok' });
  });

  it('the wire bytes of each frame are handed on unchanged', () => {
    const a = hex('81 05 48656c6c6f');
    const b = hex('82 02 0102');
    const wires: string[] = [];
    new FrameDecoder(server, (f) => wires.push(f.wire.toString('hex'))).push(Buffer.concat([a, b]));
    expect(wires).toEqual([a.toString('hex'), b.toString('hex')]);
  });
});

describe('malformed framing is one FrameError with the close code to send', () => {
  const cases: Array<[string, Buffer, FrameDecoderOptions, 1002 | 1009]> = [
    ['RSV1 set without an extension', hex('c1 05 48656c6c6f'), server, 1002],
    ['a reserved opcode', hex('83 00'), server, 1002],
    ['a reserved control opcode', hex('8b 00'), server, 1002],
    ['an unmasked client frame', hex('81 05 48656c6c6f'), client, 1002],
    ['a masked server frame', hex('81 85 37fa213d 7f9f4d5158'), server, 1002],
    ['a fragmented ping', hex('09 00'), server, 1002],
    ['a control frame of 126 bytes', Buffer.concat([hex('89 7e 007e'), Buffer.alloc(126)]), server, 1002],
    ['a 16-bit length that fits in 7 bits', hex('82 7e 0005 0102030405'), server, 1002],
    ['a 64-bit length that fits in 16 bits', Buffer.concat([hex('82 7f 0000000000000100'), Buffer.alloc(256)]), server, 1002],
    ['a 64-bit length with its top bit set', hex('82 7f 8000000000000000'), server, 1002],
    ['a continuation outside a message', hex('80 01 00'), server, 1002],
    ['a text frame inside a fragmented message', hex('01 01 41 81 01 42'), server, 1002],
    ['a frame over the cap (refused from its header alone)', hex('82 7f 0000000000100001'), server, 1009],
  ];
  for (const [name, bytes, opts, code] of cases) {
    it(name, () => {
      const d = new FrameDecoder(opts, () => undefined);
      let err: unknown;
      try {
        d.push(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FrameError);
      expect((err as FrameError).closeCode).toBe(code);
      expect((err as FrameError).code).toBe(code === 1009 ? 'AIRLOCK_TOO_LARGE' : 'AIRLOCK_PROTOCOL');
      // Nothing more is read after a violation.
      expect(() => d.push(hex('81 00'))).toThrow(FrameError);
    });
  }

  it('close payloads: one byte, and codes that may not be sent, are protocol errors', () => {
    for (const p of [hex('03'), hex('03ed'), hex('03ee'), hex('03ec'), hex('0bb7'), hex('1388')]) expect(() => readClose(p)).toThrow(FrameError);
    expect(readClose(Buffer.alloc(0))).toEqual({ code: null, reason: '' });
    expect(readClose(hex('0fa0'))).toEqual({ code: 4000, reason: '' });
  });
});

describe('encoding', () => {
  it('an unmasked text frame is the bytes of RFC 6455 §5.7', () => {
    expect(encodeFrame({ fin: true, opcode: 'text', payload: Buffer.from('Hello'), mask: false }).toString('hex')).toBe('810548656c6c6f');
    expect(encodeFrame({ fin: false, opcode: 'text', payload: Buffer.from('Hel'), mask: false }).toString('hex')).toBe('010348656c');
    expect(encodeFrame({ fin: true, opcode: 'continuation', payload: Buffer.from('lo'), mask: false }).toString('hex')).toBe('80026c6f');
  });

  it('lengths in their shortest form: 7, 16 and 64 bits', () => {
    const head = (n: number): string => encodeFrame({ fin: true, opcode: 'binary', payload: Buffer.alloc(n), mask: false }).subarray(0, 10).toString('hex').slice(0, n < 126 ? 4 : n <= 0xffff ? 8 : 20);
    expect(head(125)).toBe('827d');
    expect(head(126)).toBe('827e007e');
    expect(head(65535)).toBe('827effff');
    expect(head(65536)).toBe('827f0000000000010000');
  });

  it('a masked frame carries a key and the payload XORed with it', () => {
    const f = encodeFrame({ fin: true, opcode: 'close', payload: closePayload(1009, 'too big'), mask: true });
    expect(f[0]).toBe(0x88);
    expect(f[1]).toBe(0x80 | 9);
    const key = f.subarray(2, 6);
    const body = Buffer.from(f.subarray(6)).map((b, i) => b ^ (key[i % 4] as number));
    expect(Buffer.from(body).toString('hex')).toBe(`03f1${Buffer.from('too big').toString('hex')}`);
  });

  it('a close reason is cut to fit a control frame, never inside a character', () => {
    expect(closePayload(1000, 'x'.repeat(500)).length).toBe(125);
    // 'é' is two bytes: 61 of them fill 122 of the 123 reason bytes, and the 62nd does not fit.
    const cut = closePayload(1000, 'é'.repeat(100));
    expect(cut.length).toBe(124);
    expect(cut.subarray(2).toString('utf8')).toBe('é'.repeat(61));
    expect(Buffer.from(cut.subarray(2).toString('utf8'), 'utf8').equals(cut.subarray(2))).toBe(true);
  });
});
