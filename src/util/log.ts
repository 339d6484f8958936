import { pino, type Logger, type DestinationStream } from 'pino';
import { guardingSecrets, scrubGuarded } from '../audit/scrub.js';

export type { Logger };

/**
 * The one logger: JSON lines to stdout by default. Secrets are `Secret` values, which
 * serialise as "[secret]"; the redact paths below are a second belt for raw fields, and
 * while an HTTP session injects a credential every form of it is cut from each line's strings.
 */
export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { svc: 'airlock' },
    redact: {
      paths: ['password', '*.password', 'token', '*.token', 'authorization', '*.authorization', 'secret', '*.secret'],
      censor: '[secret]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { log: (o: Record<string, unknown>): Record<string, unknown> => (guardingSecrets() ? scrubLogValue(o) as Record<string, unknown> : o) },
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void): void {
        method.apply(this, guardingSecrets() ? args.map((a) => (typeof a === 'string' ? scrubGuarded(a) : a)) : args);
      },
    },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** Strings of a log line's plain fields, a few levels deep (an Error's message and stack included), cut of the guarded secrets. */
function scrubLogValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return scrubGuarded(v);
  if (depth > 4 || v === null || typeof v !== 'object') return v;
  if (v instanceof Error) {
    // Kept an Error for pino's err serializer; a copy only when its text held a form.
    const message = scrubGuarded(v.message);
    const stack = v.stack === undefined ? undefined : scrubGuarded(v.stack);
    if (message === v.message && stack === v.stack) return v;
    const copy = new Error(message);
    copy.name = v.name;
    copy.stack = stack;
    return copy;
  }
  if (Array.isArray(v)) return v.map((x) => scrubLogValue(x, depth + 1));
  // Only plain objects are walked: a class instance (a Secret, a Buffer) keeps its own serialisation.
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = scrubLogValue(x, depth + 1);
  return out;
}
