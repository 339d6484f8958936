import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * The one logger: JSON lines to stdout by default. Secrets are `Secret` values, which
 * serialise as "[secret]"; the redact paths below are a second belt for raw fields.
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
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
