/**
 * MariaDB's client_ed25519 authentication (plugin/auth_ed25519, ref10 crypto_sign): an
 * Ed25519 signature of the server's 32-byte scramble with the secret scalar derived from
 * SHA-512 of the password itself — RFC 8032 with the password in the place of the 32-byte
 * seed. Node's crypto takes only 32-byte seeds, hence this small BigInt implementation
 * (one signature per login; timing does not matter for a password the server already knows
 * the public key of, but the scalar multiplication is a fixed 255-step ladder anyway).
 */
import { createHash } from 'node:crypto';

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const D = (-121665n * inverse(121666n)) % P;
const BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202n;
const BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960n;

type Point = [bigint, bigint, bigint, bigint]; // extended coordinates X, Y, Z, T

function mod(a: bigint, m = P): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

function pow(b: bigint, e: bigint, m = P): bigint {
  let r = 1n;
  let x = mod(b, m);
  let k = e;
  while (k > 0n) {
    if ((k & 1n) === 1n) r = (r * x) % m;
    x = (x * x) % m;
    k >>= 1n;
  }
  return r;
}

function inverse(a: bigint): bigint {
  return pow(a, P - 2n);
}

/** RFC 8032 5.1.4 (add-2008-hwcd-3). */
function add(p: Point, q: Point): Point {
  const [x1, y1, z1, t1] = p;
  const [x2, y2, z2, t2] = q;
  const a = mod((y1 - x1) * (y2 - x2));
  const b = mod((y1 + x1) * (y2 + x2));
  const c = mod(2n * D * t1 * t2);
  const d = mod(2n * z1 * z2);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

/** Constant-shape ladder: every bit does one add and one double. */
function multiply(k: bigint, p: Point): Point {
  let r0: Point = [0n, 1n, 1n, 0n];
  let r1: Point = p;
  for (let i = 255n; i >= 0n; i--) {
    if (((k >> i) & 1n) === 0n) {
      r1 = add(r0, r1);
      r0 = add(r0, r0);
    } else {
      r0 = add(r0, r1);
      r1 = add(r1, r1);
    }
  }
  return r0;
}

function encode(p: Point): Buffer {
  const zi = inverse(p[2]);
  const x = mod(p[0] * zi);
  const y = mod(p[1] * zi);
  const out = Buffer.alloc(32);
  let v = y;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if ((x & 1n) === 1n) out[31] = (out[31] as number) | 0x80;
  return out;
}

function littleEndian(b: Buffer): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i] as number);
  return n;
}

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

const BASE: Point = [BX, BY, 1n, mod(BX * BY)];

/** The 64-byte signature client_ed25519 sends for `message` (the server's scramble). */
export function ed25519Sign(password: Buffer, message: Buffer): Buffer {
  const az = sha512(password);
  az[0] = (az[0] as number) & 248;
  az[31] = ((az[31] as number) & 63) | 64;
  const a = littleEndian(az.subarray(0, 32));
  const publicKey = encode(multiply(a, BASE));
  const r = mod(littleEndian(sha512(az.subarray(32), message)), L);
  const R = encode(multiply(r, BASE));
  const h = mod(littleEndian(sha512(R, publicKey, message)), L);
  const s = mod(r + h * a, L);
  const S = Buffer.alloc(32);
  let v = s;
  for (let i = 0; i < 32; i++) {
    S[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return Buffer.concat([R, S]);
}
