/**
 * SCRAM-SHA-256 client (RFC 5802, RFC 7677) as PostgreSQL speaks it: no channel binding
 * offered (gs2 header "n,,"), the user name left empty (the server takes the startup user).
 * The password stays a Secret until the salted hash is computed.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { AirlockError } from '../../src/util/errors.js';
import type { Secret } from '../../src/secrets/index.js';

const GS2_HEADER = 'n,,';
const MAX_ITERATIONS = 10_000_000;

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

function scramFailed(why: string): AirlockError {
  return new AirlockError('AIRLOCK_UPSTREAM_AUTH', `SCRAM exchange failed: ${why}`, { fatal: true });
}

/** "a=v,b=w" → attributes; values may contain '=' (base64). */
function attributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    if (part.length < 2 || part[1] !== '=') throw scramFailed('malformed server message');
    out.set(part.slice(0, 1), part.slice(2));
  }
  return out;
}

export class ScramClient {
  private readonly nonce = randomBytes(18).toString('base64');
  private readonly clientFirstBare = `n=,r=${this.nonce}`;
  private serverSignature: Buffer | null = null;

  constructor(private readonly password: Secret) {}

  clientFirst(): Buffer {
    return Buffer.from(GS2_HEADER + this.clientFirstBare);
  }

  /** Answers server-first with client-final (carrying the proof). */
  clientFinal(serverFirstBytes: Buffer): Buffer {
    const serverFirst = serverFirstBytes.toString('utf8');
    const attrs = attributes(serverFirst);
    if (attrs.has('m')) throw scramFailed('the server requires an unknown extension');
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (nonce === undefined || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) throw scramFailed('the server nonce is invalid');
    if (salt === undefined || salt === '' || !Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
      throw scramFailed('the server parameters are invalid');
    }
    // PostgreSQL applies SASLprep; for the usual (ASCII, NFKC-stable) passwords this is the identity.
    const salted = pbkdf2Sync(this.password.reveal().normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(sha256(clientKey), authMessage);
    const proof = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) proof[i] = (clientKey[i] ?? 0) ^ (clientSignature[i] ?? 0);
    this.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** Checks server-final's signature: the server, too, must know the password. */
  verifyServerFinal(serverFinalBytes: Buffer): void {
    const attrs = attributes(serverFinalBytes.toString('utf8'));
    const error = attrs.get('e');
    if (error !== undefined) throw scramFailed(`the server reports ${error}`);
    const v = attrs.get('v');
    if (v === undefined || this.serverSignature === null) throw scramFailed('the server signature is missing');
    const got = Buffer.from(v, 'base64');
    if (got.length !== 32 || !timingSafeEqual(got, this.serverSignature)) throw scramFailed('the server signature does not match');
  }
}
