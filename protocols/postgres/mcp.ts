/**
 * SQL over airlock's own Postgres listener with node-postgres: the token is the password,
 * so the gateway applies every rule, approval and mask exactly as for psql.
 */
import pg from 'pg';
import { heldApprovalId, jsonValue, ToolRefusal, type HoldHooks, type Limits, type QueryResult, type Target, type SqlAuth } from '../../src/mcp/backends/types.js';

interface PgError {
  code?: string;
  message: string;
  severity?: string;
}

function isPgError(e: unknown): e is PgError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string';
}


export async function pgQuery(target: Target, auth: SqlAuth, sql: string, limits: Limits, hooks: HoldHooks, signal?: AbortSignal): Promise<QueryResult> {
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    user: auth.user,
    password: auth.token,
    database: target.name,
    application_name: 'airlock-mcp',
    ...(target.tls ? { ssl: auth.ca !== undefined ? { ca: auth.ca } : { rejectUnauthorized: true } } : {}),
    connectionTimeoutMillis: 30_000,
  });
  const notices: string[] = [];
  let holdTimer: NodeJS.Timeout | null = null;
  let giveUp: ((e: Error) => void) | null = null;
  const gaveUp = new Promise<never>((_, reject) => {
    giveUp = reject;
  });
  gaveUp.catch(() => undefined);
  client.on('notice', (n: { message?: string }) => {
    const text = n.message ?? '';
    const id = heldApprovalId(text);
    if (id !== null) {
      hooks.onHold(id, text);
      holdTimer ??= setTimeout(() => {
        giveUp?.(new ToolRefusal(`still waiting for approval ${id} after ${Math.round(limits.holdTimeoutMs / 1000)} s; an approver can run "airlock approvals approve ${id}", then call the tool again`, 'denied', 'AIRLOCK_APPROVAL_TIMEOUT'));
        void client.end().catch(() => undefined);
      }, limits.holdTimeoutMs);
    } else if (notices.length < 20) notices.push(text);
  });
  client.on('error', () => undefined);
  const onAbort = (): void => {
    giveUp?.(new ToolRefusal('the tool call was cancelled', 'error'));
    void client.end().catch(() => undefined);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race([client.connect(), gaveUp]);
    return await Promise.race([runQuery(client, sql, limits, notices), gaveUp]);
  } catch (e) {
    if (e instanceof ToolRefusal) throw e;
    if (isPgError(e)) {
      const denied = e.code === '42501' || e.code === '28000' || e.code === '28P01';
      throw new ToolRefusal(e.message, denied ? 'denied' : 'error', e.code);
    }
    throw new ToolRefusal(e instanceof Error ? `cannot reach connection ${target.name}: ${e.message}` : String(e), 'error');
  } finally {
    if (holdTimer !== null) clearTimeout(holdTimer);
    signal?.removeEventListener('abort', onAbort);
    void client.end().catch(() => undefined);
  }
}

function runQuery(client: pg.Client, sql: string, limits: Limits, notices: string[]): Promise<QueryResult> {
  return new Promise((resolve, reject) => {
    const rows: unknown[][] = [];
    let columns: string[] = [];
    let bytes = 0;
    let truncated = false;
    let seen = 0;
    // rowMode is honoured by pg.Query, though its QueryConfig type does not list it. The extended
    // protocol takes exactly one statement, as the tool promises.
    const config: pg.QueryConfig = Object.assign({ text: sql }, { rowMode: 'array', queryMode: 'extended' });
    const query = new pg.Query(config);
    query.on('row', (row: unknown[], result?: { fields?: Array<{ name: string }> }) => {
      seen += 1;
      if (truncated) return;
      if (columns.length === 0 && result?.fields !== undefined) columns = result.fields.map((f) => f.name);
      const value = row.map(jsonValue);
      const size = Buffer.byteLength(JSON.stringify(value));
      if (rows.length >= limits.maxRows || bytes + size > limits.maxBytes) {
        truncated = true;
        // Stop the transfer: ending the connection cancels the statement at the gateway.
        resolve({ columns, rows, rowCount: rows.length, command: 'SELECT', truncated: true, notices });
        void client.end().catch(() => undefined);
        return;
      }
      bytes += size;
      rows.push(value);
    });
    query.on('end', (result: { command?: string; rowCount?: number | null; fields?: Array<{ name: string }> }) => {
      if (truncated) return;
      if (columns.length === 0 && result.fields !== undefined) columns = result.fields.map((f) => f.name);
      resolve({ columns, rows, rowCount: result.rowCount ?? seen, command: result.command ?? '', truncated: false, notices });
    });
    query.on('error', (e: Error) => {
      if (!truncated) reject(e);
    });
    client.query(query);
  });
}
