/** A command over airlock's own SSH listener with ssh2: password authentication with the token. */
import { Client } from 'ssh2';
import { sshFingerprint } from '../../src/auth/ssh-certs.js';
import { isLoopback } from '../../src/util/duration.js';
import { heldApprovalId, ToolRefusal, type HoldHooks, type Limits, type Target, type ExecAuth, type ExecResult } from '../../src/mcp/backends/types.js';



export function execCommand(target: Target, auth: ExecAuth, command: string, limits: Limits, hooks: HoldHooks, signal?: AbortSignal): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(holdTimer);
      signal?.removeEventListener('abort', onAbort);
      fn();
      conn.end();
    };
    let holdTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => finish(() => reject(new ToolRefusal('the tool call was cancelled', 'error')));
    signal?.addEventListener('abort', onAbort, { once: true });
    conn.on('error', (e) => finish(() => reject(new ToolRefusal(/authentication/i.test(e.message) ? `airlock refused the login "${auth.login}" on ${target.name}` : `cannot reach connection ${target.name}: ${e.message}`, /authentication/i.test(e.message) ? 'denied' : 'error'))));
    conn.on('ready', () => {
      conn.exec(command, (err, stream) => {
        if (err) return finish(() => reject(new ToolRefusal(err.message, 'error')));
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let bytes = 0;
        let truncated = false;
        let exitCode: number | null = null;
        let exitSignal: string | undefined;
        const take = (into: Buffer[], chunk: Buffer): void => {
          if (truncated) return;
          if (bytes + chunk.length > limits.maxBytes) {
            into.push(chunk.subarray(0, limits.maxBytes - bytes));
            truncated = true;
            stream.close();
            return;
          }
          bytes += chunk.length;
          into.push(chunk);
        };
        stream.on('data', (c: Buffer) => take(out, c));
        stream.stderr.on('data', (c: Buffer) => {
          const id = heldApprovalId(c.toString('utf8'));
          if (id !== null) {
            hooks.onHold(id, c.toString('utf8').trim());
            holdTimer ??= setTimeout(
              () => finish(() => reject(new ToolRefusal(`still waiting for approval ${id} after ${Math.round(limits.holdTimeoutMs / 1000)} s; an approver can run "airlock approvals approve ${id}", then call the tool again`, 'denied', 'AIRLOCK_APPROVAL_TIMEOUT'))),
              limits.holdTimeoutMs,
            );
            return;
          }
          take(errOut, c);
        });
        stream.on('exit', (code: number | null, sig?: string) => {
          exitCode = code;
          if (sig !== undefined) exitSignal = sig;
        });
        stream.on('close', () =>
          finish(() => {
            const stderr = Buffer.concat(errOut).toString('utf8');
            // The gateway refuses a command with exit status 126 and a stderr line naming the rule.
            if (exitCode === 126 && /denied by rule|approval/.test(stderr)) reject(new ToolRefusal(stderr.trim(), 'denied', '126'));
            else resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr, exitCode, ...(exitSignal === undefined ? {} : { signal: exitSignal }), truncated });
          }),
        );
      });
    });
    conn.connect({
      host: target.host,
      port: target.port,
      username: auth.login,
      password: auth.token,
      readyTimeout: 30_000,
      tryKeyboard: false,
      hostVerifier: (key: Buffer) => {
        if (auth.hostKeyFingerprint === undefined) return isLoopback(target.host);
        const fp = sshFingerprint(key);
        return fp === auth.hostKeyFingerprint.replace(/=+$/, '');
      },
    });
  });
}
