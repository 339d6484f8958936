/**
 * The time a client has, from its connection to a verified token, before airlock closes the
 * connection (`auth_timeout` on every listener). A connection that never authenticates holds
 * a socket, a parser and perhaps a TLS session: slowloris, or a scanner that opens many.
 * Each listener answers the expiry in its own protocol's error form, then closes.
 */
import { AirlockError } from '../util/errors.js';

/** After the expiry's error is written, how long before the socket is destroyed whatever its state. */
export const CLOSE_GRACE_MS = 1_000;

export class AuthDeadline {
  private timer: NodeJS.Timeout | null;
  private state: 'running' | 'expired' | 'done' = 'running';

  constructor(
    readonly ms: number,
    onExpire: (err: AirlockError) => void,
  ) {
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.state !== 'running') return;
      this.state = 'expired';
      onExpire(this.error());
    }, ms);
    this.timer.unref();
  }

  get expired(): boolean {
    return this.state === 'expired';
  }

  /** The error a listener sends when the deadline passes: fatal, the code AIRLOCK_AUTH_TIMEOUT. */
  error(): AirlockError {
    return new AirlockError('AIRLOCK_AUTH_TIMEOUT', `authentication did not finish within ${formatMs(this.ms)} (auth_timeout)`, { fatal: true });
  }

  /** Authentication finished: the deadline stops. Throws AIRLOCK_AUTH_TIMEOUT when it had already passed. */
  done(): void {
    if (this.state === 'expired') throw this.error();
    this.cancel();
  }

  /** The connection ended (or authenticated) in some other way. */
  cancel(): void {
    if (this.state === 'running') this.state = 'done';
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
