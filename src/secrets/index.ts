import { readFileSync, statSync } from 'node:fs';
import { inspect } from 'node:util';
import { AirlockError } from '../util/errors.js';
import { execProvider, onePasswordProvider, vaultProvider, type ProvidedSecret } from './providers.js';

export type { ProvidedSecret } from './providers.js';

const REDACTED = '[secret]';
const value = Symbol('airlock.secret');

/**
 * A secret value. It prints as `[secret]` everywhere (String(), JSON, util.inspect,
 * template literals); the only way out is `reveal()`, which call sites use at the
 * moment a credential is put on the wire.
 */
export class Secret {
  private readonly [value]: string;

  constructor(v: string) {
    this[value] = v;
    Object.freeze(this);
  }

  reveal(): string {
    return this[value];
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }
}

/** `${provider:argument}` — the whole string or embedded in text ("Bearer ${env:KEY}"). */
const REFERENCE = /\$\{([a-z]+):([^}]*)\}/g;

/** A provider may say how long its answer stays valid (a Vault lease); a bare string uses the default TTL. */
export type SecretProvider = (argument: string) => Promise<string | ProvidedSecret>;

export interface SecretResolverOptions {
  env?: NodeJS.ProcessEnv;
  /** Called with a warning text (never a secret) e.g. for a world-readable secret file. */
  warn?: (message: string) => void;
  providers?: Record<string, SecretProvider>;
  /** How long a resolved reference is reused; 0 disables the cache. Default 5 minutes. */
  cacheTtlMs?: number;
  /** Per-provider timeout for op/vault/exec. Default 10 s. */
  timeoutMs?: number;
  /** For tests: the clock. */
  now?: () => number;
}

export const DEFAULT_SECRET_CACHE_TTL_MS = 5 * 60_000;

interface CacheEntry {
  value: Promise<string>;
  /** Set once the value settles; until then concurrent users share the one lookup. */
  expiresAt: number;
}

export function isSecretReference(text: string): boolean {
  REFERENCE.lastIndex = 0;
  return REFERENCE.test(text);
}

/** Names of providers used in a text, e.g. for config validation. */
export function referencedProviders(text: string): string[] {
  return [...text.matchAll(REFERENCE)].map((m) => m[1] ?? '');
}

export const BUILTIN_PROVIDERS = ['env', 'file', 'op', 'vault', 'exec'] as const;

/** env is read in-process each time: caching it would only delay a change. */
const UNCACHED = new Set(['env']);

/**
 * Resolves secret references at use. A text with no reference is a literal secret
 * (allowed, but `config check` warns about literal secrets in files). Each reference's
 * value is cached for a bounded time (shorter when the source grants a shorter lease);
 * `invalidate()` drops the cache on SIGHUP or when upstream refuses a credential.
 */
export class SecretResolver {
  private readonly env: NodeJS.ProcessEnv;
  private readonly warn: (message: string) => void;
  private readonly providers: Record<string, SecretProvider>;
  private readonly cacheTtlMs: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, CacheEntry>();

  constructor(options: SecretResolverOptions = {}) {
    this.env = options.env ?? process.env;
    this.warn = options.warn ?? (() => undefined);
    this.cacheTtlMs = options.cacheTtlMs ?? DEFAULT_SECRET_CACHE_TTL_MS;
    this.now = options.now ?? Date.now;
    const timeout = options.timeoutMs;
    this.providers = {
      env: async (name) => this.fromEnv(name),
      file: async (path) => this.fromFile(path),
      op: onePasswordProvider(this.env, timeout),
      vault: vaultProvider(this.env, timeout),
      exec: execProvider(this.env, timeout),
      ...options.providers,
    };
  }

  /** Forget cached values: all of them, or those used by one reference text. */
  invalidate(text?: string): void {
    if (text === undefined) {
      this.cache.clear();
      return;
    }
    for (const m of text.matchAll(REFERENCE)) this.cache.delete(`${m[1] ?? ''}:${m[2] ?? ''}`);
  }

  private lookup(provider: string, argument: string): Promise<string> {
    const fn = this.providers[provider];
    if (fn === undefined) {
      return Promise.reject(new AirlockError('AIRLOCK_SECRET_UNRESOLVED', `unknown secret provider "${provider}"`));
    }
    const cacheable = this.cacheTtlMs > 0 && !UNCACHED.has(provider);
    const key = `${provider}:${argument}`;
    if (cacheable) {
      const hit = this.cache.get(key);
      if (hit !== undefined && hit.expiresAt > this.now()) return hit.value;
      this.cache.delete(key);
    }
    const entry: CacheEntry = { value: Promise.resolve(''), expiresAt: Number.POSITIVE_INFINITY };
    entry.value = fn(argument).then(
      (r) => {
        const { value, ttlMs } = typeof r === 'string' ? { value: r, ttlMs: undefined } : r;
        entry.expiresAt = this.now() + Math.min(this.cacheTtlMs, ttlMs ?? this.cacheTtlMs);
        return value;
      },
      (e: unknown) => {
        // A failure is not remembered: the next use asks the source again.
        if (this.cache.get(key) === entry) this.cache.delete(key);
        throw e;
      },
    );
    if (cacheable) this.cache.set(key, entry);
    return entry.value;
  }

  async resolve(text: string): Promise<Secret> {
    const parts: string[] = [];
    let last = 0;
    for (const m of text.matchAll(REFERENCE)) {
      const [whole, provider = '', argument = ''] = m;
      parts.push(text.slice(last, m.index));
      parts.push(await this.lookup(provider, argument));
      last = (m.index ?? 0) + whole.length;
    }
    parts.push(text.slice(last));
    return new Secret(parts.join(''));
  }

  private fromEnv(name: string): string {
    const v = this.env[name];
    if (v === undefined || v === '') {
      throw new AirlockError('AIRLOCK_SECRET_UNRESOLVED', `environment variable ${name} is not set`);
    }
    return v;
  }

  private fromFile(path: string): string {
    try {
      const st = statSync(path);
      if ((st.mode & 0o004) !== 0) this.warn(`secret file ${path} is world-readable`);
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      throw new AirlockError('AIRLOCK_SECRET_UNRESOLVED', `secret file ${path} cannot be read`);
    }
  }
}
