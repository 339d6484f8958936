// Property-based fuzzing (fast-check) of the wire codecs on both legs: the PostgreSQL frame
// reader and message decoders, the MySQL packet reader and command / column-definition
// decoders, the WebSocket frame codec and the SSH command lexer. Properties: only the named
// error (a fatal AirlockError with a stable code), splitting a stream at any boundary gives
// the same frames, a length claiming more than the cap is refused before anything is
// buffered for it, and decode(encode(x)) = x where an encoder exists. Seeded
// (AIRLOCK_FUZZ_SEED) and bounded (AIRLOCK_FUZZ_RUNS, raised by `make fuzz`).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FUZZ_SEED, fuzzRuns } from '../harness/sql-gen.js';
import { AirlockError } from '../../src/util/errors.js';
import { FrameReader, type Frame as PgFrame } from '../../protocols/postgres/codec/framing.js';
import { decodeFrontend, encodeBind, encodeClose, encodeDescribe, encodeExecute, encodeParse, encodeQuery as pgEncodeQuery } from '../../protocols/postgres/codec/frontend.js';
import { decodeBackend, encodeDataRow, encodeErrorResponse, encodeParameterStatus, encodeRowDescription } from '../../protocols/postgres/codec/backend.js';
import { PacketReader, framePacket, type Packet } from '../../protocols/mysql/codec/framing.js';
import { decodeCommand, encodeInitDb, encodeQuery as myEncodeQuery, encodeStmtPrepare } from '../../protocols/mysql/codec/messages/command.js';
import { decodeColumnDefinition, encodeColumnDefinition, type ColumnDefinition } from '../../protocols/mysql/codec/messages/resultset.js';
import { FrameDecoder, FrameError, encodeFrame, type Frame as WsFrame, type OpcodeName } from '../../protocols/http/websocket-frames.js';
import { analyzeShell } from '../../parsers/shell/index.js';

const RUNS = fuzzRuns(300);
const params = { seed: FUZZ_SEED, numRuns: RUNS };

/** Runs fn; any throw other than a fatal AirlockError with a code fails the property. */
function onlyNamedErrors(fn: () => unknown): AirlockError | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (!(e instanceof AirlockError)) throw e;
    expect(e.code).toMatch(/^AIRLOCK_[A-Z_]+$/);
    expect(e.fatal || e.code === 'AIRLOCK_UNSUPPORTED').toBe(true);
    return e;
  }
}

/** Cut points splitting `total` bytes into chunks. */
const cuts = (total: number): fc.Arbitrary<number[]> =>
  fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, total - 1) }), { maxLength: 12 }).map((a) => a.filter((n) => n < total).sort((x, y) => x - y));

function split(b: Buffer, at: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const n of at) {
    out.push(b.subarray(prev, n));
    prev = n;
  }
  out.push(b.subarray(prev));
  return out;
}

/** Text without NUL (C strings cannot carry it) and only whole characters (UTF-8 round trip). */
const text = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));
const bytes = (max: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
/** Bytes biased to the values where readers go wrong: terminators, -1 lengths, lenenc prefixes. */
const nastyBytes = (max: number): fc.Arbitrary<Buffer> =>
  fc.array(fc.oneof(fc.constantFrom(0x00, 0xff, 0xfb, 0xfc, 0xfd, 0xfe, 0x7f, 0x80), fc.integer({ min: 0, max: 255 })), { maxLength: max }).map((a) => Buffer.from(a));

describe('PostgreSQL codec', () => {
  const pgMessage = fc.oneof(
    text.map((s) => pgEncodeQuery(s)),
    fc.tuple(text, text, fc.array(fc.nat(), { maxLength: 4 })).map(([n, s, t]) => encodeParse(n, s, t)),
    fc.tuple(text, text, fc.array(fc.option(bytes(20), { nil: null }), { maxLength: 4 })).map(([p, s, ps]) =>
      encodeBind({ portal: p, statement: s, paramFormats: [], params: ps, resultFormats: [] })),
    fc.tuple(fc.constantFrom('S' as const, 'P' as const), text).map(([k, n]) => encodeDescribe(k, n)),
    fc.tuple(fc.constantFrom('S' as const, 'P' as const), text).map(([k, n]) => encodeClose(k, n)),
    fc.tuple(text, fc.nat()).map(([p, n]) => encodeExecute(p, n)),
  );

  it('frontend messages round-trip through the frame reader, however the stream is split', () => {
    fc.assert(
      fc.property(fc.array(pgMessage, { minLength: 1, maxLength: 6 }).chain((ms) => {
        const stream = Buffer.concat(ms);
        return fc.tuple(fc.constant(ms), fc.constant(stream), cuts(stream.length));
      }), ([ms, stream, at]) => {
        const reader = new FrameReader({ maxMessageBytes: 1 << 20, maxStartupBytes: 10_000, startup: false });
        const frames: PgFrame[] = [];
        for (const chunk of split(stream, at)) reader.push(chunk, (f) => frames.push({ ...f, raw: Buffer.from(f.raw), payload: Buffer.from(f.payload) }));
        expect(reader.buffered).toBe(0);
        expect(frames.map((f) => f.raw.toString('hex'))).toEqual(ms.map((m) => m.toString('hex')));
        for (const f of frames) {
          const m = decodeFrontend(f);
          // The message re-read from its own encoding is the same message.
          expect(decodeFrontend(f)).toEqual(m);
        }
      }),
      params,
    );
  });

  it('Query, Parse and Describe decode to what was encoded', () => {
    const one = (b: Buffer): PgFrame => ({ type: b[0] as number, payload: b.subarray(5), raw: b });
    fc.assert(
      fc.property(text, text, fc.array(fc.nat(), { maxLength: 4 }), (name, sql, types) => {
        expect(decodeFrontend(one(pgEncodeQuery(sql)))).toEqual({ type: 'Query', sql });
        expect(decodeFrontend(one(encodeParse(name, sql, types)))).toEqual({ type: 'Parse', name, sql, paramTypes: types });
        expect(decodeFrontend(one(encodeDescribe('P', name)))).toEqual({ type: 'Describe', kind: 'P', name });
      }),
      params,
    );
  });

  it('backend messages decode to what was encoded', () => {
    const one = (b: Buffer): PgFrame => ({ type: b[0] as number, payload: b.subarray(5), raw: b });
    fc.assert(
      fc.property(text, text, fc.array(fc.option(text, { nil: null }), { maxLength: 5 }), (name, value, cells) => {
        expect(decodeBackend(one(encodeParameterStatus(name, value)))).toEqual({ type: 'ParameterStatus', name, value });
        const row = decodeBackend(one(encodeDataRow(cells)));
        expect(row.type === 'DataRow' && row.cells.map((c) => (c === null ? null : c.toString('utf8')))).toEqual(cells);
        const err = decodeBackend(one(encodeErrorResponse({ severity: 'ERROR', code: '42000', message: value })));
        expect(err.type === 'ErrorResponse' && err.fields.message).toBe(value);
        const rd = decodeBackend(one(encodeRowDescription([{ name, tableOid: 1, columnAttr: 2, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }])));
        expect(rd.type === 'RowDescription' && rd.fields[0]?.name).toBe(name);
      }),
      params,
    );
  });

  it('random frames of every type, on either leg, raise only named errors', () => {
    const types = [...'QPBDECSHXdcfFpRKZvANTts123IGWnV'].map((c) => c.charCodeAt(0));
    fc.assert(
      fc.property(fc.constantFrom(...types), nastyBytes(64), fc.constantFrom('password' as const, 'sasl-initial' as const, 'sasl' as const), (type, payload, auth) => {
        const raw = Buffer.alloc(payload.length + 5);
        raw[0] = type;
        raw.writeInt32BE(payload.length + 4, 1);
        payload.copy(raw, 5);
        const f: PgFrame = { type, payload: raw.subarray(5), raw };
        onlyNamedErrors(() => decodeFrontend(f, auth));
        onlyNamedErrors(() => decodeBackend(f));
      }),
      { ...params, numRuns: RUNS * 10 },
    );
  });

  it('a length over the cap is refused at the header, before its body is buffered', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x41, max: 0x7a }), fc.integer({ min: 4097, max: 0x7fffffff }), fc.boolean(), (type, len, startup) => {
        const reader = new FrameReader({ maxMessageBytes: 4096, maxStartupBytes: 4096, startup });
        const head = Buffer.alloc(5);
        if (startup) head.writeInt32BE(len === 0x58000000 ? len + 1 : len, 0);
        else {
          head[0] = type;
          head.writeInt32BE(len, 1);
        }
        const e = onlyNamedErrors(() => reader.push(head, () => undefined));
        expect(e?.code).toBe('AIRLOCK_TOO_LARGE');
      }),
      params,
    );
  });

  it('random streams split anywhere: the same frames or the same error, never lost bytes', () => {
    fc.assert(
      fc.property(nastyBytes(200).chain((s) => fc.tuple(fc.constant(s), cuts(s.length))), fc.boolean(), ([stream, at], startup) => {
        const run = (chunks: Buffer[]): { frames: string[]; error: string | null; held: number } => {
          const reader = new FrameReader({ maxMessageBytes: 4096, maxStartupBytes: 512, startup });
          const frames: string[] = [];
          const e = onlyNamedErrors(() => {
            for (const c of chunks) reader.push(c, (f) => frames.push(f.raw.toString('hex')));
          });
          if (e === null) expect(frames.join('').length / 2 + reader.buffered).toBe(stream.length);
          return { frames, error: e?.code ?? null, held: e === null ? reader.buffered : -1 };
        };
        expect(run(split(stream, at))).toEqual(run([stream]));
      }),
      { ...params, numRuns: RUNS * 3 },
    );
  });
});

describe('MySQL codec', () => {
  it('packets round-trip through the packet reader, however the stream is split', () => {
    fc.assert(
      fc.property(fc.array(bytes(300), { minLength: 1, maxLength: 6 }).chain((ps) => {
        const stream = Buffer.concat(ps.map((p, i) => framePacket(p, i)));
        return fc.tuple(fc.constant(ps), fc.constant(stream), cuts(stream.length));
      }), ([ps, stream, at]) => {
        const reader = new PacketReader({ maxPacketBytes: 4096 });
        const got: Packet[] = [];
        for (const c of split(stream, at)) reader.push(c, (p) => got.push({ ...p, payload: Buffer.from(p.payload) }));
        expect(reader.buffered).toBe(0);
        expect(got.map((p) => [p.seq, p.payload.toString('hex')])).toEqual(ps.map((p, i) => [i, p.toString('hex')]));
      }),
      params,
    );
  });

  it('random streams split anywhere: the same packets or the same error', () => {
    fc.assert(
      fc.property(nastyBytes(300).chain((s) => fc.tuple(fc.constant(s), cuts(s.length))), ([stream, at]) => {
        const run = (chunks: Buffer[]): { packets: string[]; error: string | null } => {
          const reader = new PacketReader({ maxPacketBytes: 512 });
          const packets: string[] = [];
          const e = onlyNamedErrors(() => {
            for (const c of chunks) reader.push(c, (p) => packets.push(p.raw.toString('hex')));
          });
          return { packets, error: e?.code ?? null };
        };
        expect(run(split(stream, at))).toEqual(run([stream]));
      }),
      { ...params, numRuns: RUNS * 3 },
    );
  });

  it('a length over the cap is refused at the header, before its body is buffered', () => {
    fc.assert(
      fc.property(fc.integer({ min: 513, max: 0xffffff }), fc.nat({ max: 255 }), (len, seq) => {
        const reader = new PacketReader({ maxPacketBytes: 512 });
        const head = Buffer.alloc(4);
        head.writeUIntLE(len, 0, 3);
        head[3] = seq;
        expect(onlyNamedErrors(() => reader.push(head, () => undefined))?.code).toBe('AIRLOCK_TOO_LARGE');
      }),
      params,
    );
  });

  it('commands decode to what was encoded', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), (sql) => {
        expect(decodeCommand(myEncodeQuery(sql))).toEqual({ type: 'COM_QUERY', sql });
        expect(decodeCommand(encodeStmtPrepare(sql))).toEqual({ type: 'COM_STMT_PREPARE', sql });
        expect(decodeCommand(encodeInitDb(sql))).toEqual({ type: 'COM_INIT_DB', schema: sql });
      }),
      params,
    );
  });

  const columnDefinition: fc.Arbitrary<ColumnDefinition> = fc.record({
    catalog: fc.constant('def'),
    schema: fc.string({ unit: 'grapheme', maxLength: 20 }),
    table: fc.string({ unit: 'grapheme', maxLength: 300 }),
    orgTable: fc.string({ unit: 'grapheme', maxLength: 20 }),
    name: fc.string({ unit: 'grapheme', maxLength: 20 }),
    orgName: fc.string({ unit: 'grapheme', maxLength: 20 }),
    characterSet: fc.nat({ max: 0xffff }),
    columnLength: fc.nat({ max: 0xffffffff }),
    columnType: fc.nat({ max: 0xff }),
    flags: fc.nat({ max: 0xffff }),
    decimals: fc.nat({ max: 0xff }),
  });

  it('column definitions decode to what was encoded, with and without extended metadata', () => {
    fc.assert(
      fc.property(columnDefinition, fc.option(fc.string({ unit: 'grapheme', maxLength: 10 }), { nil: undefined }), (c, typeName) => {
        expect(decodeColumnDefinition(encodeColumnDefinition(c))).toEqual(c);
        const ext: ColumnDefinition = typeName === undefined ? c : { ...c, extendedTypeName: typeName };
        expect(decodeColumnDefinition(encodeColumnDefinition(ext, true), true)).toEqual(ext);
      }),
      params,
    );
  });

  it('mutated column definitions and commands raise only named errors', () => {
    fc.assert(
      fc.property(columnDefinition, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 4 }), fc.nat(), fc.boolean(), (c, edits, cut, ext) => {
        const b = Buffer.from(encodeColumnDefinition(c, ext));
        for (const [at, v] of edits) b[at % b.length] = v;
        const m = b.subarray(0, cut % (b.length + 1));
        onlyNamedErrors(() => decodeColumnDefinition(m, ext));
        onlyNamedErrors(() => decodeColumnDefinition(m, !ext));
        onlyNamedErrors(() => decodeCommand(m));
      }),
      { ...params, numRuns: RUNS * 5 },
    );
  });
});

describe('WebSocket frame codec', () => {
  const opcode = fc.constantFrom<OpcodeName>('text', 'binary', 'ping', 'pong', 'close');
  const wsFrame = fc.tuple(opcode, fc.boolean()).chain(([op, big]) =>
    fc.record({
      opcode: fc.constant(op),
      payload: op === 'text' || op === 'binary' ? (big ? fc.integer({ min: 126, max: 70_000 }).map((n) => Buffer.alloc(n, 0x61)) : bytes(200)) : bytes(125),
    }));

  for (const masked of [true, false]) {
    it(`frames round-trip, however the stream is split (${masked ? 'client → airlock, masked' : 'upstream → airlock, unmasked'})`, () => {
      fc.assert(
        fc.property(fc.array(wsFrame, { minLength: 1, maxLength: 4 }).chain((fs) => {
          const stream = Buffer.concat(fs.map((f) => encodeFrame({ fin: true, opcode: f.opcode, payload: f.payload, mask: masked })));
          return fc.tuple(fc.constant(fs), fc.constant(stream), cuts(stream.length));
        }), ([fs, stream, at]) => {
          const got: WsFrame[] = [];
          const d = new FrameDecoder({ maxPayload: 1 << 20, masked }, (f) => got.push(f));
          for (const c of split(stream, at)) d.push(c);
          expect(d.pending).toBe(0);
          expect(got.map((f) => [f.opcode, f.fin, f.payload.toString('hex')])).toEqual(fs.map((f) => [f.opcode, true, f.payload.toString('hex')]));
        }),
        { ...params, numRuns: Math.ceil(RUNS / 3) },
      );
    });
  }

  it('random bytes on either leg: the same frames or the same FrameError, however split', () => {
    fc.assert(
      fc.property(nastyBytes(200).chain((s) => fc.tuple(fc.constant(s), cuts(s.length))), fc.boolean(), ([stream, at], masked) => {
        const run = (chunks: Buffer[]): { frames: string[]; error: number | null } => {
          const frames: string[] = [];
          const d = new FrameDecoder({ maxPayload: 1024, masked }, (f) => frames.push(f.wire.toString('hex')));
          try {
            for (const c of chunks) d.push(c);
            return { frames, error: null };
          } catch (e) {
            if (!(e instanceof FrameError)) throw e;
            return { frames, error: e.closeCode };
          }
        };
        expect(run(split(stream, at))).toEqual(run([stream]));
      }),
      { ...params, numRuns: RUNS * 3 },
    );
  });

  it('a 64-bit length over the cap is refused with 1009 from the header alone', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x10000, max: Number.MAX_SAFE_INTEGER }), fc.boolean(), (len, masked) => {
        const head = Buffer.alloc(10);
        head[0] = 0x82;
        head[1] = (masked ? 0x80 : 0) | 127;
        head.writeUInt32BE(Math.floor(len / 0x1_0000_0000), 2);
        head.writeUInt32BE(len >>> 0, 6);
        const d = new FrameDecoder({ maxPayload: 0xffff, masked }, () => undefined);
        let err: unknown = null;
        try {
          d.push(head);
        } catch (e) {
          err = e;
        }
        expect(err instanceof FrameError && err.closeCode).toBe(1009);
        expect(d.pending).toBe(0);
      }),
      params,
    );
  });
});

describe('SSH command lexer', () => {
  const FRAGMENTS = [
    "'", '"', '`', '$(', ')', '(', '{', '}', ';', '&&', '||', '|', '&', '#', ' ', '\n', '\\', '$', '${', "$'", '$((', '))',
    '${x:-', 'if', 'then', 'fi', 'case', 'in', 'esac', ';;', 'do', 'done', '<<', '<<<', 'EOF', '<(', '>', '2>&1', 'x=(',
    'a[', ']', 'echo', 'sh -c', 'eval', '[[', ']]', '((', '*', 'function', 'f()', '!', '\t', '\u00a0', '\0',
  ];
  const line = fc.array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 3 })), { maxLength: 40 }).map((a) => a.join(''));

  it('any line is analysed without an exception, and reasons explain every refusal', () => {
    fc.assert(
      fc.property(line, (l) => {
        const a = analyzeShell(l);
        expect(a.reasons.length > 0).toBe(a.unparsed || a.opaque);
      }),
      { ...params, numRuns: RUNS * 10 },
    );
  });

  it('a repeated opener, however deep, is analysed (unparsed past the nesting limit), not a stack overflow', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('$((', '${x:-"', '"$(', '$(', '<(', '`', '${x:-', 'a[', '(', '{ '), { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 20_000 }), (openers, n) => {
        const a = analyzeShell(`echo ${openers.join('').repeat(n)}x`);
        expect(a.reasons.length > 0).toBe(a.unparsed || a.opaque);
      }),
      { ...params, numRuns: Math.min(100, Math.ceil(RUNS / 10)) },
    );
  });

  // Found by the fuzzer: each `$((` recursed once, so 20000 of them overflowed the stack.
  it('20000 nested $(( is unparsed, not a RangeError', () => {
    const a = analyzeShell(`echo ${'$(('.repeat(20_000)}1${'))'.repeat(20_000)}`);
    expect(a.unparsed).toBe(true);
    expect(a.reasons).toContain('expansions nested too deeply');
  });
});
