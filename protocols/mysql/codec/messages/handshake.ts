/**
 * The connection phase packets: Protocol::HandshakeV10 (server → client),
 * Protocol::HandshakeResponse41 and Protocol::SSLRequest (client → server).
 * MariaDB's additions: a server that clears CLIENT_MYSQL (bit 0) puts 4 bytes of extended
 * capabilities (codes.ts MariadbCapability) in the last 4 reserved bytes of its greeting; a
 * client that clears the bit too answers with its own in the last 4 of the response's 23
 * reserved bytes (MariaDB "Connection": Initial handshake packet, Handshake response packet).
 */
import { Capability } from '../codes.js';
import { Reader, malformed } from '../reader.js';
import { Writer } from '../writer.js';

export interface HandshakeV10 {
  type: 'HandshakeV10';
  protocolVersion: number;
  serverVersion: string;
  connectionId: number;
  /** The 20-byte scramble (both auth-plugin-data parts, without the trailing NUL). */
  authPluginData: Buffer;
  capabilities: number;
  characterSet: number;
  statusFlags: number;
  /** MariaDB extended capabilities (0 unless the server cleared CLIENT_MYSQL). */
  mariadbCapabilities: number;
  authPluginName: string;
}

export function decodeHandshakeV10(payload: Buffer): HandshakeV10 {
  const r = new Reader(payload, 'HandshakeV10');
  const protocolVersion = r.uint8();
  if (protocolVersion !== 10) throw malformed(`HandshakeV10: protocol version ${protocolVersion}`);
  const serverVersion = r.cstring();
  const connectionId = r.uint32();
  const part1 = r.bytes(8);
  r.skip(1);
  let capabilities = r.uint16();
  let characterSet = 0;
  let statusFlags = 0;
  let authDataLength = 0;
  let mariadbCapabilities = 0;
  let part2: Buffer = Buffer.alloc(0);
  let authPluginName = '';
  if (r.remaining > 0) {
    characterSet = r.uint8();
    statusFlags = r.uint16();
    capabilities = (capabilities | (r.uint16() << 16)) >>> 0;
    authDataLength = r.uint8();
    r.skip(6);
    const ext = r.uint32();
    if ((capabilities & Capability.LONG_PASSWORD) === 0) mariadbCapabilities = ext;
    if ((capabilities & Capability.SECURE_CONNECTION) !== 0) {
      const n = Math.max(13, authDataLength - 8);
      part2 = r.bytes(Math.min(n, r.remaining));
      if (part2.length > 0 && part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1);
    }
    if ((capabilities & Capability.PLUGIN_AUTH) !== 0) authPluginName = r.cbytesOrRest().toString('utf8');
  }
  return {
    type: 'HandshakeV10',
    protocolVersion,
    serverVersion,
    connectionId,
    authPluginData: Buffer.concat([part1, part2]),
    capabilities,
    characterSet,
    statusFlags,
    mariadbCapabilities,
    authPluginName,
  };
}

/** With `mariadbCapabilities` other than 0 the greeting is a MariaDB one: CLIENT_MYSQL cleared, the extended set announced. */
export function encodeHandshakeV10(h: Omit<HandshakeV10, 'type' | 'protocolVersion' | 'mariadbCapabilities'> & { mariadbCapabilities?: number }): Buffer {
  if (h.authPluginData.length !== 20) throw new Error('the scramble is 20 bytes');
  const ext = h.mariadbCapabilities ?? 0;
  const caps = ext === 0 ? h.capabilities : (h.capabilities & ~Capability.LONG_PASSWORD) >>> 0;
  return new Writer(128)
    .uint8(10)
    .cstring(h.serverVersion)
    .uint32(h.connectionId)
    .bytes(h.authPluginData.subarray(0, 8))
    .uint8(0)
    .uint16(caps & 0xffff)
    .uint8(h.characterSet)
    .uint16(h.statusFlags)
    .uint16(caps >>> 16)
    .uint8(21)
    .zeros(6)
    .uint32(ext)
    .bytes(h.authPluginData.subarray(8))
    .uint8(0)
    .cstring(h.authPluginName)
    .finish();
}

export interface HandshakeResponse41 {
  type: 'HandshakeResponse41';
  capabilities: number;
  maxPacketSize: number;
  characterSet: number;
  username: string;
  authResponse: Buffer;
  database: string | null;
  authPluginName: string | null;
  /** Connection attributes as sent (program_name, _client_name …). */
  attributes: Array<[string, string]>;
  /** MariaDB extended capabilities (0 unless the client cleared CLIENT_MYSQL). */
  mariadbCapabilities: number;
}

/** The SSLRequest is the first 32 bytes of a HandshakeResponse41 with CLIENT_SSL set. */
export interface SslRequest {
  type: 'SSLRequest';
  capabilities: number;
  maxPacketSize: number;
  characterSet: number;
  mariadbCapabilities: number;
}

export const SSL_REQUEST_LENGTH = 32;

/** Decodes what a client sends after HandshakeV10: an SSLRequest or its HandshakeResponse41. */
export function decodeHandshakeResponse(payload: Buffer): HandshakeResponse41 | SslRequest {
  const r = new Reader(payload, 'HandshakeResponse41');
  const capabilities = r.uint32();
  if ((capabilities & Capability.PROTOCOL_41) === 0) throw malformed('HandshakeResponse: the pre-4.1 protocol is not supported');
  const maxPacketSize = r.uint32();
  const characterSet = r.uint8();
  r.skip(19);
  const ext = r.uint32();
  const mariadbCapabilities = (capabilities & Capability.LONG_PASSWORD) === 0 ? ext : 0;
  if (r.remaining === 0 && (capabilities & Capability.SSL) !== 0) return { type: 'SSLRequest', capabilities, maxPacketSize, characterSet, mariadbCapabilities };
  const username = r.cstring();
  let authResponse: Buffer;
  if ((capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0) authResponse = r.lenencBytes();
  else if ((capabilities & Capability.SECURE_CONNECTION) !== 0) authResponse = r.bytes(r.uint8());
  else authResponse = r.cbytesOrRest();
  let database: string | null = null;
  if ((capabilities & Capability.CONNECT_WITH_DB) !== 0 && r.remaining > 0) database = r.cstring();
  let authPluginName: string | null = null;
  if ((capabilities & Capability.PLUGIN_AUTH) !== 0 && r.remaining > 0) authPluginName = r.cbytesOrRest().toString('utf8');
  const attributes: Array<[string, string]> = [];
  if ((capabilities & Capability.CONNECT_ATTRS) !== 0 && r.remaining > 0) {
    const block = new Reader(r.lenencBytes(), 'connection attributes');
    while (block.remaining > 0) attributes.push([block.lenencString(), block.lenencString()]);
  }
  return { type: 'HandshakeResponse41', capabilities, maxPacketSize, characterSet, username, authResponse, database, authPluginName, attributes, mariadbCapabilities };
}

/** The extended capabilities travel only when CLIENT_MYSQL is cleared. */
const extendedOf = (capabilities: number, ext: number | undefined): number => ((capabilities & Capability.LONG_PASSWORD) === 0 ? (ext ?? 0) : 0);

export function encodeSslRequest(capabilities: number, maxPacketSize: number, characterSet: number, mariadbCapabilities = 0): Buffer {
  return new Writer(32).uint32(capabilities | Capability.SSL).uint32(maxPacketSize).uint8(characterSet).zeros(19).uint32(extendedOf(capabilities, mariadbCapabilities)).finish();
}

export function encodeHandshakeResponse41(m: Omit<HandshakeResponse41, 'type' | 'mariadbCapabilities'> & { mariadbCapabilities?: number }): Buffer {
  const w = new Writer(128).uint32(m.capabilities).uint32(m.maxPacketSize).uint8(m.characterSet).zeros(19).uint32(extendedOf(m.capabilities, m.mariadbCapabilities)).cstring(m.username);
  if ((m.capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0) w.lenencBytes(m.authResponse);
  else {
    if (m.authResponse.length > 255) throw new Error('auth response too long without PLUGIN_AUTH_LENENC_CLIENT_DATA');
    w.uint8(m.authResponse.length).bytes(m.authResponse);
  }
  if ((m.capabilities & Capability.CONNECT_WITH_DB) !== 0) w.cstring(m.database ?? '');
  if ((m.capabilities & Capability.PLUGIN_AUTH) !== 0) w.cstring(m.authPluginName ?? '');
  if ((m.capabilities & Capability.CONNECT_ATTRS) !== 0) {
    const attrs = new Writer(64);
    for (const [k, v] of m.attributes) attrs.lenencString(k).lenencString(v);
    w.lenencBytes(attrs.finish());
  }
  return w.finish();
}
