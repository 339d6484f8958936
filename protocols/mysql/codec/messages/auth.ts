/**
 * Authentication exchange packets (Protocol::AuthSwitchRequest, AuthSwitchResponse,
 * AuthMoreData) and the scrambles of the password plugins airlock speaks upstream:
 * mysql_native_password (SHA1), caching_sha2_password (SHA256 fast path; full path as
 * cleartext over TLS or RSA-OAEP with the server's public key).
 */
import { createHash, publicEncrypt, constants } from 'node:crypto';
import { PacketHeader } from '../codes.js';
import { Reader, malformed } from '../reader.js';
import { Writer } from '../writer.js';

export interface AuthSwitchRequest {
  type: 'AuthSwitchRequest';
  pluginName: string;
  pluginData: Buffer;
}

export interface AuthMoreData {
  type: 'AuthMoreData';
  data: Buffer;
}

export function decodeAuthSwitchRequest(payload: Buffer): AuthSwitchRequest {
  const r = new Reader(payload, 'AuthSwitchRequest');
  if (r.uint8() !== PacketHeader.EOF) throw malformed('AuthSwitchRequest: header');
  // A bare 0xfe is the pre-4.1 OldAuthSwitchRequest (mysql_old_password).
  if (r.remaining === 0) return { type: 'AuthSwitchRequest', pluginName: 'mysql_old_password', pluginData: Buffer.alloc(0) };
  const pluginName = r.cstring();
  let pluginData = r.rest();
  if (pluginData.length > 0 && pluginData[pluginData.length - 1] === 0) pluginData = pluginData.subarray(0, pluginData.length - 1);
  return { type: 'AuthSwitchRequest', pluginName, pluginData };
}

export function encodeAuthSwitchRequest(pluginName: string, pluginData: Buffer): Buffer {
  return new Writer(64).uint8(PacketHeader.EOF).cstring(pluginName).bytes(pluginData).uint8(0).finish();
}

export function decodeAuthMoreData(payload: Buffer): AuthMoreData {
  const r = new Reader(payload, 'AuthMoreData');
  if (r.uint8() !== PacketHeader.AUTH_MORE_DATA) throw malformed('AuthMoreData: header');
  return { type: 'AuthMoreData', data: r.rest() };
}

export function encodeAuthMoreData(data: Buffer): Buffer {
  return new Writer(data.length + 1).uint8(PacketHeader.AUTH_MORE_DATA).bytes(data).finish();
}

/** mysql_clear_password: the password and a NUL. The NUL is optional on the wire. */
export function decodeClearPassword(payload: Buffer): string {
  const end = payload.length > 0 && payload[payload.length - 1] === 0 ? payload.length - 1 : payload.length;
  if (payload.subarray(0, end).includes(0)) throw malformed('clear password: embedded NUL');
  return payload.toString('utf8', 0, end);
}

function sha1(...parts: Buffer[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i % b.length] as number);
  return out;
}

/** SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))); empty for an empty password. */
export function nativePasswordScramble(password: Buffer, scramble: Buffer): Buffer {
  if (password.length === 0) return Buffer.alloc(0);
  const stage1 = sha1(password);
  return xor(stage1, sha1(scramble.subarray(0, 20), sha1(stage1)));
}

/** SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble). */
export function cachingSha2Scramble(password: Buffer, scramble: Buffer): Buffer {
  if (password.length === 0) return Buffer.alloc(0);
  const p1 = sha256(password);
  return xor(p1, sha256(sha256(p1), scramble.subarray(0, 20)));
}

/** caching_sha2 full authentication without TLS: (password + NUL) XOR scramble, RSA-OAEP. */
export function rsaEncryptPassword(password: Buffer, scramble: Buffer, publicKeyPem: string): Buffer {
  const plain = xor(Buffer.concat([password, Buffer.from([0])]), scramble.subarray(0, 20));
  return publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING }, plain);
}

/** caching_sha2_password AuthMoreData status bytes. */
export const CachingSha2 = {
  REQUEST_PUBLIC_KEY: 0x02,
  FAST_AUTH_SUCCESS: 0x03,
  PERFORM_FULL_AUTHENTICATION: 0x04,
} as const;
