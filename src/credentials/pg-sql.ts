/**
 * SQL text building for airlock's admin statements: quoting, role names and SCRAM
 * verifiers. Pure functions; the only I/O is pbkdf2.
 */
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2P = promisify(pbkdf2);

/** PostgreSQL quote_ident, always quoting: "a""b". */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('identifier contains NUL');
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * PostgreSQL quote_literal: 'it''s'; a string with a backslash becomes E'…' with
 * backslashes doubled, so it reads the same whatever standard_conforming_strings is.
 */
export function quoteLiteral(text: string): string {
  if (text.includes('\0')) throw new Error('literal contains NUL');
  const body = text.replace(/'/g, "''");
  return text.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

/** The subject as it may appear in a role name: lower-case [a-z0-9_], at most `max` characters. */
export function sanitiseSubject(subject: string, max = 20): string {
  const ascii = subject
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, max)
    .replace(/_+$/, '');
  return ascii === '' ? 'user' : ascii;
}

/** A short, stable tag for a node id, for role names (the comment carries the full id). */
export function nodeTag(nodeId: string): string {
  return createHash('sha256').update(nodeId).digest('hex').slice(0, 6);
}

export const MAX_IDENT_BYTES = 63;

/** `<prefix><subject>_<node tag>_<random>` — ASCII, at most 63 bytes. */
export function roleName(prefix: string, subject: string, nodeId: string): string {
  const tail = `_${nodeTag(nodeId)}_${randomBytes(5).toString('hex')}`;
  const room = Math.max(0, Math.min(20, MAX_IDENT_BYTES - prefix.length - tail.length));
  const name = `${prefix}${sanitiseSubject(subject, room)}${tail}`;
  return name.length > MAX_IDENT_BYTES ? name.slice(name.length - MAX_IDENT_BYTES) : name;
}

/**
 * A SCRAM-SHA-256 verifier (RFC 5802/7677 as PostgreSQL stores it), so CREATE ROLE
 * never carries the plaintext password — not even into the server's statement log.
 * The password is ASCII (base64url), for which SASLprep is the identity.
 */
export async function scramVerifier(password: string, iterations = 4096): Promise<string> {
  const salt = randomBytes(16);
  const salted = await pbkdf2P(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** What airlock writes in COMMENT ON ROLE to recognise its own roles. */
export interface RoleTag {
  node: string;
  session: string;
  subject?: string;
}

export function roleComment(tag: RoleTag): string {
  return JSON.stringify({ airlock: tag });
}

/** The tag from a role comment, or null when the role is not one of airlock's. */
export function parseRoleComment(comment: string | null): RoleTag | null {
  if (comment === null) return null;
  try {
    const v: unknown = JSON.parse(comment);
    if (typeof v !== 'object' || v === null || !('airlock' in v)) return null;
    const a: unknown = v.airlock;
    if (typeof a !== 'object' || a === null || !('node' in a) || !('session' in a)) return null;
    const { node, session } = a;
    if (typeof node !== 'string' || typeof session !== 'string') return null;
    return { node, session };
  } catch {
    return null;
  }
}
