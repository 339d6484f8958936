// Random bodies for every message type: a decoder may refuse them, but only with an
// AirlockError, never a RangeError or TypeError from inside a Buffer read.
import { describe, expect, it } from 'vitest';
import { FrameReader, type Frame } from '../../protocols/postgres/codec/framing.js';
import { decodeFrontend, decodeStartup } from '../../protocols/postgres/codec/frontend.js';
import { decodeBackend } from '../../protocols/postgres/codec/backend.js';
import { AirlockError } from '../../src/util/errors.js';

/** Deterministic xorshift32, so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function body(rand: () => number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) {
    // Bias towards 0x00 and 0xff: terminators and -1 lengths are where readers go wrong.
    const r = rand();
    b[i] = r < 0.2 ? 0 : r < 0.35 ? 0xff : Math.floor(rand() * 256);
  }
  return b;
}

function onlyAirlockErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof AirlockError)) throw e;
    expect(e.fatal || e.code === 'AIRLOCK_UNSUPPORTED').toBe(true);
  }
}

const frame = (type: number, payload: Buffer): Frame => {
  const raw = Buffer.alloc(payload.length + 5);
  raw[0] = type;
  raw.writeInt32BE(payload.length + 4, 1);
  payload.copy(raw, 5);
  return { type, payload: raw.subarray(5), raw };
};

describe('decoders on random input', () => {
  const rand = rng(0xa1b2c3d4);
  const types = [...'QPBDECSHXdcfFpRKZvANTts123IGWnV'].map((c) => c.charCodeAt(0));

  it('frontend, backend and startup decoders throw only named errors', () => {
    for (let round = 0; round < 400; round++) {
      for (const t of types) {
        const payload = body(rand, Math.floor(rand() * 48));
        onlyAirlockErrors(() => decodeFrontend(frame(t, payload), (['password', 'sasl-initial', 'sasl'] as const)[round % 3]));
        onlyAirlockErrors(() => decodeBackend(frame(t, payload)));
      }
      const startup = body(rand, Math.floor(rand() * 48));
      if (round % 4 === 0 && startup.length >= 4) startup.writeInt32BE(196608, 0);
      if (round % 4 === 1 && startup.length >= 4) startup.writeInt32BE(80877102, 0);
      onlyAirlockErrors(() => decodeStartup(startup));
    }
  });

  it('the frame reader fed random bytes throws only named errors and never loses count', () => {
    for (let round = 0; round < 300; round++) {
      const reader = new FrameReader({ maxMessageBytes: 4096, maxStartupBytes: 512, startup: round % 2 === 0 });
      const stream = body(rand, 1 + Math.floor(rand() * 200));
      let framed = 0;
      onlyAirlockErrors(() => {
        for (let off = 0; off < stream.length; ) {
          const n = 1 + Math.floor(rand() * 16);
          reader.push(stream.subarray(off, off + n), (f) => {
            framed += f.raw.length;
          });
          off += n;
        }
        expect(framed + reader.buffered).toBe(stream.length);
      });
    }
  });
});
