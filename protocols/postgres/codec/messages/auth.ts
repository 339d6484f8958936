/**
 * Authentication, both directions: the server's Authentication* requests ('R') and the
 * client's 'p' messages, whose meaning depends on which request came before.
 */
import { AirlockError } from '../../../../src/util/errors.js';
import { AuthCode, MessageCode } from '../codes.js';
import { Reader } from '../reader.js';
import { Writer } from '../writer.js';

// ---- backend: Authentication* ----

export type AuthenticationMessage =
  | { type: 'AuthenticationOk' }
  | { type: 'AuthenticationCleartextPassword' }
  | { type: 'AuthenticationMD5Password'; salt: Buffer }
  | { type: 'AuthenticationSASL'; mechanisms: string[] }
  | { type: 'AuthenticationSASLContinue'; data: Buffer }
  | { type: 'AuthenticationSASLFinal'; data: Buffer };

export function decodeAuthentication(payload: Buffer): AuthenticationMessage {
  const r = new Reader(payload, 'Authentication');
  const code = r.int32();
  switch (code) {
    case AuthCode.Ok:
      r.end();
      return { type: 'AuthenticationOk' };
    case AuthCode.CleartextPassword:
      r.end();
      return { type: 'AuthenticationCleartextPassword' };
    case AuthCode.MD5Password: {
      const salt = r.bytes(4);
      r.end();
      return { type: 'AuthenticationMD5Password', salt };
    }
    case AuthCode.SASL: {
      const mechanisms: string[] = [];
      for (let m = r.cstring(); m !== ''; m = r.cstring()) mechanisms.push(m);
      r.end();
      return { type: 'AuthenticationSASL', mechanisms };
    }
    case AuthCode.SASLContinue:
      return { type: 'AuthenticationSASLContinue', data: r.rest() };
    case AuthCode.SASLFinal:
      return { type: 'AuthenticationSASLFinal', data: r.rest() };
    default:
      throw new AirlockError('AIRLOCK_UNSUPPORTED', `authentication method ${code} (Kerberos, GSSAPI or SSPI) is not supported`, { fatal: true });
  }
}

const auth = (code: number, sizeHint = 8): Writer => new Writer(MessageCode.Authentication, sizeHint).int32(code);

export function encodeAuthenticationOk(): Buffer {
  return auth(AuthCode.Ok).finish();
}

export function encodeAuthenticationCleartextPassword(): Buffer {
  return auth(AuthCode.CleartextPassword).finish();
}

export function encodeAuthenticationMD5Password(salt: Buffer): Buffer {
  if (salt.length !== 4) throw new AirlockError('AIRLOCK_INTERNAL', 'an MD5 salt is 4 bytes');
  return auth(AuthCode.MD5Password).bytes(salt).finish();
}

export function encodeAuthenticationSASL(mechanisms: readonly string[]): Buffer {
  const w = auth(AuthCode.SASL, 64);
  for (const m of mechanisms) w.cstring(m);
  return w.uint8(0).finish();
}

export function encodeAuthenticationSASLContinue(data: Buffer): Buffer {
  return auth(AuthCode.SASLContinue, data.length + 8).bytes(data).finish();
}

export function encodeAuthenticationSASLFinal(data: Buffer): Buffer {
  return auth(AuthCode.SASLFinal, data.length + 8).bytes(data).finish();
}

// ---- frontend: 'p' ----

/** Which Authentication request the 'p' answers: it decides how the body is read. */
export type AuthState = 'password' | 'sasl-initial' | 'sasl';

export type PasswordFamilyMessage =
  | { type: 'PasswordMessage'; password: string }
  | { type: 'SASLInitialResponse'; mechanism: string; data: Buffer | null }
  | { type: 'SASLResponse'; data: Buffer };

export function decodePasswordFamily(payload: Buffer, state: AuthState): PasswordFamilyMessage {
  switch (state) {
    case 'password': {
      const r = new Reader(payload, 'PasswordMessage');
      const password = r.cstring();
      r.end();
      return { type: 'PasswordMessage', password };
    }
    case 'sasl-initial': {
      const r = new Reader(payload, 'SASLInitialResponse');
      const mechanism = r.cstring();
      const data = r.nullableBytes();
      r.end();
      return { type: 'SASLInitialResponse', mechanism, data };
    }
    case 'sasl':
      return { type: 'SASLResponse', data: payload };
  }
}

export function encodePasswordMessage(password: string): Buffer {
  return new Writer(MessageCode.Password, password.length + 8).cstring(password).finish();
}

export function encodeSASLInitialResponse(mechanism: string, data: Buffer | null): Buffer {
  return new Writer(MessageCode.Password, 64 + (data?.length ?? 0)).cstring(mechanism).nullableBytes(data).finish();
}

export function encodeSASLResponse(data: Buffer): Buffer {
  return new Writer(MessageCode.Password, data.length + 8).bytes(data).finish();
}
