import { readFileSync, statSync } from 'node:fs';
import { inspect } from 'node:util';
import { AirlockError } from './errors.js';

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

export type SecretProvider = (argument: string) => Promise<string>;

export interface SecretResolverOptions {
  env?: NodeJS.ProcessEnv;
  /** Called with a warning text (never a secret) e.g. for a world-readable secret file. */
  warn?: (message: string) => void;
  providers?: Record<string, SecretProvider>;
}

export function isSecretReference(text: string): boolean {
  REFERENCE.lastIndex = 0;
  return REFERENCE.test(text);
}

/** Names of providers used in a text, e.g. for config validation. */
export function referencedProviders(text: string): string[] {
  return [...text.matchAll(REFERENCE)].map((m) => m[1] ?? '');
}

export const BUILTIN_PROVIDERS = ['env', 'file'] as const;

/**
 * Resolves secret references at use. A text with no reference is a literal secret
 * (allowed, but `config check` warns about literal secrets in files).
 */
export class SecretResolver {
  private readonly env: NodeJS.ProcessEnv;
  private readonly warn: (message: string) => void;
  private readonly providers: Record<string, SecretProvider>;

  constructor(options: SecretResolverOptions = {}) {
    this.env = options.env ?? process.env;
    this.warn = options.warn ?? (() => undefined);
    this.providers = {
      env: async (name) => this.fromEnv(name),
      file: async (path) => this.fromFile(path),
      ...options.providers,
    };
  }

  async resolve(text: string): Promise<Secret> {
    const parts: string[] = [];
    let last = 0;
    for (const m of text.matchAll(REFERENCE)) {
      const [whole, provider = '', argument = ''] = m;
      parts.push(text.slice(last, m.index));
      const fn = this.providers[provider];
      if (fn === undefined) {
        throw new AirlockError('AIRLOCK_SECRET_UNRESOLVED', `unknown secret provider "${provider}"`);
      }
      parts.push(await fn(argument));
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
