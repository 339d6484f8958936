/**
 * The untyped startup phase: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest,
 * and the one-byte answers to the encryption requests.
 * (protocol-message-formats: "StartupMessage", "SSLRequest", "GSSENCRequest", "CancelRequest")
 */
import { EncryptionReply, StartupCode } from '../codes.js';
import { Reader, malformed } from '../reader.js';
import { Writer } from '../writer.js';

export type StartupPhaseMessage =
  | { type: 'SSLRequest' }
  | { type: 'GSSENCRequest' }
  | { type: 'CancelRequest'; pid: number; secret: number }
  | { type: 'StartupMessage'; protocolVersion: number; parameters: Record<string, string> };

/** Decodes an untyped startup-phase packet body (the frame's payload, after the length). */
export function decodeStartup(payload: Buffer): StartupPhaseMessage {
  const r = new Reader(payload, 'startup packet');
  const code = r.int32();
  switch (code) {
    case StartupCode.SSLRequest:
      r.end();
      return { type: 'SSLRequest' };
    case StartupCode.GSSENCRequest:
      r.end();
      return { type: 'GSSENCRequest' };
    case StartupCode.CancelRequest: {
      const pid = r.int32();
      const secret = r.int32();
      r.end();
      return { type: 'CancelRequest', pid, secret };
    }
    default:
      // Major version 3; a newer minor is answered with NegotiateProtocolVersion by the caller.
      if (code >>> 16 !== 3) throw malformed(`startup packet: unsupported protocol version ${code >>> 16}.${code & 0xffff}`);
      return { type: 'StartupMessage', protocolVersion: code, parameters: decodeParameters(r) };
  }
}

function decodeParameters(r: Reader): Record<string, string> {
  // No prototype: a parameter named "__proto__" must stay an ordinary key.
  const parameters = Object.create(null) as Record<string, string>;
  for (;;) {
    const name = r.cstring();
    if (name === '') break;
    if (name in parameters) throw malformed(`startup packet: parameter "${name}" given twice`);
    parameters[name] = r.cstring();
  }
  r.end();
  return parameters;
}

export function encodeStartupMessage(parameters: Record<string, string>, protocolVersion: number = StartupCode.ProtocolV3): Buffer {
  const w = new Writer(0, 128).int32(protocolVersion);
  for (const [name, value] of Object.entries(parameters)) w.cstring(name).cstring(value);
  return w.uint8(0).finish();
}

export function encodeSSLRequest(): Buffer {
  return new Writer(0, 8).int32(StartupCode.SSLRequest).finish();
}

export function encodeGSSENCRequest(): Buffer {
  return new Writer(0, 8).int32(StartupCode.GSSENCRequest).finish();
}

export function encodeCancelRequest(pid: number, secret: number): Buffer {
  return new Writer(0, 16).int32(StartupCode.CancelRequest).int32(pid).int32(secret).finish();
}

/** The server's one-byte answers to SSLRequest / GSSENCRequest. */
export const SSL_ACCEPT: Buffer = Buffer.from([EncryptionReply.Accept]);
export const SSL_REFUSE: Buffer = Buffer.from([EncryptionReply.Refuse]);
export const GSSENC_REFUSE: Buffer = Buffer.from([EncryptionReply.Refuse]);
