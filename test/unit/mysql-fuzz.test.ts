// Random and mutated packets for every decoder of the MySQL codec: a decoder may refuse
// them, but only with a fatal AirlockError, never a RangeError or TypeError from inside
// a Buffer read. Deterministic, so a failure reproduces.
import { describe, expect, it } from 'vitest';
import { PacketReader } from '../../protocols/mysql/codec/framing.js';
import { Capability } from '../../protocols/mysql/codec/codes.js';
import { decodeHandshakeResponse, decodeHandshakeV10, encodeHandshakeResponse41, encodeHandshakeV10 } from '../../protocols/mysql/codec/messages/handshake.js';
import { decodeAuthMoreData, decodeAuthSwitchRequest, decodeClearPassword } from '../../protocols/mysql/codec/messages/auth.js';
import { decodeEof, decodeErr, decodeOk, terminatorStatus } from '../../protocols/mysql/codec/messages/generic.js';
import { decodeCommand } from '../../protocols/mysql/codec/messages/command.js';
import { decodeBinaryRow, decodeColumnCount, decodeColumnDefinition, decodeStmtPrepareOk, decodeTextRow } from '../../protocols/mysql/codec/messages/resultset.js';
import { AirlockError } from '../../src/util/errors.js';

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
    // Bias towards 0x00, 0xfb-0xff: terminators, NULL markers and length prefixes are where readers go wrong.
    const r = rand();
    b[i] = r < 0.2 ? 0 : r < 0.4 ? 0xfb + Math.floor(rand() * 5) : Math.floor(rand() * 256);
  }
  return b;
}

function mutate(rand: () => number, good: Buffer): Buffer {
  const b = Buffer.from(good);
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
  return rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
}

function onlyAirlockErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof AirlockError)) throw e;
    expect(e.fatal).toBe(true);
  }
}

const ALL_CAPS = 0xffffffff >>> 0;
const DECODERS: Array<[string, (b: Buffer) => unknown]> = [
  ['HandshakeV10', decodeHandshakeV10],
  ['HandshakeResponse', decodeHandshakeResponse],
  ['AuthSwitchRequest', decodeAuthSwitchRequest],
  ['AuthMoreData', decodeAuthMoreData],
  ['clear password', decodeClearPassword],
  ['OK', (b) => decodeOk(b, ALL_CAPS)],
  ['OK (4.1)', (b) => decodeOk(b, Capability.PROTOCOL_41)],
  ['ERR', decodeErr],
  ['EOF', decodeEof],
  ['terminator', (b) => terminatorStatus(b, ALL_CAPS)],
  ['command', decodeCommand],
  ['column count', decodeColumnCount],
  ['column definition', decodeColumnDefinition],
  ['text row', (b) => decodeTextRow(b, 3)],
  ['binary row', (b) => decodeBinaryRow(b, [0x01, 0x03, 0x08, 0x0c, 0xfd, 0x05, 0x0b, 0xf6])],
  ['prepare ok', decodeStmtPrepareOk],
];

describe('decoders refuse garbage with one named error', () => {
  for (const [name, decode] of DECODERS) {
    it(name, () => {
      const rand = rng(name.length * 7919 + 1);
      for (let i = 0; i < 3000; i++) onlyAirlockErrors(() => decode(body(rand, Math.floor(rand() * 80))));
    });
  }

  it('mutations of valid handshakes', () => {
    const rand = rng(42);
    const hello = encodeHandshakeV10({ serverVersion: '10.11.19-MariaDB', connectionId: 9, authPluginData: Buffer.alloc(20, 0x41), capabilities: 0xf7fe | (0x81bf << 16), characterSet: 45, statusFlags: 2, authPluginName: 'mysql_native_password' });
    const caps = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CONNECT_WITH_DB | Capability.CONNECT_ATTRS;
    const resp = encodeHandshakeResponse41({ capabilities: caps, maxPacketSize: 1 << 24, characterSet: 45, username: 'u', authResponse: Buffer.from('tok\0'), database: 'd', authPluginName: 'mysql_clear_password', attributes: [['_client_name', 'x']] });
    for (let i = 0; i < 5000; i++) {
      onlyAirlockErrors(() => decodeHandshakeV10(mutate(rand, hello)));
      onlyAirlockErrors(() => decodeHandshakeResponse(mutate(rand, resp)));
    }
  });
});

describe('framing of random streams', () => {
  it('either frames or refuses with AIRLOCK_TOO_LARGE / AIRLOCK_PROTOCOL', () => {
    const rand = rng(7);
    for (let i = 0; i < 2000; i++) {
      const r = new PacketReader({ maxPacketBytes: 4096 });
      onlyAirlockErrors(() => {
        for (let k = 0; k < 5; k++) r.push(body(rand, Math.floor(rand() * 300)), () => undefined);
      });
    }
  });
});
