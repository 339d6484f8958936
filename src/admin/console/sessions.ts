/**
 * Console sign-in state, kept in memory: a pending login (PKCE verifier + state) until the
 * issuer redirects back, then a session holding the verified identity and its CSRF token.
 * The cookie carries only a random id; it is HttpOnly, SameSite=Lax, Secure over TLS.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Identity } from '../../core/types.js';

export const SESSION_COOKIE = 'airlock_console';
export const LOGIN_COOKIE = 'airlock_console_login';
const LOGIN_TTL_MS = 10 * 60_000;
const MAX_PENDING_LOGINS = 1000;

export interface ConsoleSession {
  id: string;
  identity: Identity;
  csrf: string;
}

export interface PendingLogin {
  verifier: string;
  state: string;
  createdAt: number;
}

export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

export function readCookie(req: IncomingMessage, name: string): string | null {
  const header = req.headers.cookie;
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export function isTls(req: IncomingMessage): boolean {
  return (req.socket as Partial<TLSSocket>).encrypted === true;
}

export function cookie(req: IncomingMessage, name: string, value: string, maxAgeSec: number): string {
  return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.max(0, Math.floor(maxAgeSec))}${isTls(req) ? '; Secure' : ''}`;
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly logins = new Map<string, PendingLogin>();

  startLogin(login: Omit<PendingLogin, 'createdAt'>): string {
    this.sweep();
    if (this.logins.size >= MAX_PENDING_LOGINS) {
      const oldest = this.logins.keys().next().value;
      if (oldest !== undefined) this.logins.delete(oldest);
    }
    const key = randomToken();
    this.logins.set(key, { ...login, createdAt: Date.now() });
    return key;
  }

  /** A pending login is used once. */
  takeLogin(key: string | null): PendingLogin | null {
    if (key === null) return null;
    const login = this.logins.get(key) ?? null;
    this.logins.delete(key);
    if (login === null || Date.now() - login.createdAt > LOGIN_TTL_MS) return null;
    return login;
  }

  create(identity: Identity): ConsoleSession {
    this.sweep();
    const session: ConsoleSession = { id: randomToken(), identity, csrf: randomToken() };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The session ends when the issuer's token would have expired. */
  get(id: string | null): ConsoleSession | null {
    if (id === null) return null;
    const s = this.sessions.get(id);
    if (s === undefined) return null;
    if (Date.now() >= s.identity.expiresAt) {
      this.sessions.delete(id);
      return null;
    }
    return s;
  }

  end(id: string | null): void {
    if (id !== null) this.sessions.delete(id);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, s] of this.sessions) if (now >= s.identity.expiresAt) this.sessions.delete(k);
    for (const [k, l] of this.logins) if (now - l.createdAt > LOGIN_TTL_MS) this.logins.delete(k);
  }
}
