/**
 * How long an HTTP client connection may go without a complete request header block, and
 * without authenticating (auth_timeout). Node's own headersTimeout is only checked every
 * connectionsCheckingInterval (30 s) and against the request's start, so slow clients that
 * drip a byte every few seconds were kept for a minute and more; this timer is exact.
 *
 * - From the connection until its first request's header block: auth_timeout.
 * - While a request is answered: no timer (bodies and held approvals have their own limits).
 * - After a response, on a connection that has authenticated: auth_timeout again, for the next
 *   header block. On one that has not: what is left of its first auth_timeout, and none left
 *   closes it — a connection cannot stay open on requests with bad or no tokens.
 *
 * When the timer fires with no request being answered, the client gets a 408 problem+json
 * and the connection closes.
 */
import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import { AuthDeadline, CLOSE_GRACE_MS } from '../../src/auth/deadline.js';
import type { AirlockError } from '../../src/util/errors.js';

export class ConnectionAdmission {
  private deadline: AuthDeadline | null = null;
  private readonly until: number;
  private inFlight = 0;
  private authenticated = false;
  private detached = false;

  constructor(
    private readonly socket: Socket,
    private readonly ms: number,
    private readonly onTimeout: (err: AirlockError) => void,
  ) {
    this.until = Date.now() + ms;
    this.arm(ms);
    socket.once('close', () => this.deadline?.cancel());
  }

  /** A request's header block arrived; its response's end re-arms the timer. */
  requestArrived(res: ServerResponse): void {
    this.inFlight++;
    this.deadline?.cancel();
    res.once('close', () => {
      this.inFlight--;
      if (this.inFlight === 0 && !this.detached && !this.socket.destroyed) this.idle();
    });
  }

  /** The caller's token on this connection was verified (and its session opened). */
  authenticatedNow(): void {
    this.authenticated = true;
  }

  /** A WebSocket took the socket over: HTTP timers no longer apply. */
  detach(): void {
    this.detached = true;
    this.deadline?.cancel();
  }

  private idle(): void {
    if (this.authenticated) return this.arm(this.ms);
    const left = this.until - Date.now();
    if (left > 0) return this.arm(left);
    // Never authenticated within auth_timeout: close once the last answer has gone out.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  private arm(ms: number): void {
    this.deadline?.cancel();
    this.deadline = new AuthDeadline(ms, (err) => {
      if (this.inFlight > 0 || this.detached || !this.socket.writable) return;
      this.onTimeout(err);
      const body = JSON.stringify({ type: `urn:airlock:error:${err.code}`, title: 'request timeout', status: 408, code: err.code, detail: 'no complete, authenticated request arrived in time (auth_timeout)' });
      this.socket.end(`HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`);
      setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    });
  }
}
