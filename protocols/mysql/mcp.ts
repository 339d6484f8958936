/**
 * SQL over airlock's own MySQL listener with mysql2: the token is the password, sent with
 * mysql_clear_password (airlock requires TLS for it off loopback).
 */
import mysql from 'mysql2';
import { jsonValue, ToolRefusal, type Limits, type QueryResult, type Target, type SqlAuth } from '../../src/mcp/backends/types.js';

interface MysqlError {
  code?: string;
  errno?: number;
  sqlState?: string;
  message: string;
}


export async function mysqlQuery(target: Target, auth: SqlAuth, sql: string, limits: Limits, signal?: AbortSignal): Promise<QueryResult> {
  const conn = mysql.createConnection({
    host: target.host,
    port: target.port,
    user: auth.user,
    password: auth.token,
    enableCleartextPlugin: true,
    rowsAsArray: true,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    connectTimeout: 30_000,
    ...(target.tls ? { ssl: auth.ca !== undefined ? { ca: auth.ca } : { rejectUnauthorized: true } } : {}),
  });
  conn.on('error', () => undefined);
  const onAbort = (): void => conn.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await new Promise<QueryResult>((resolve, reject) => {
      const rows: unknown[][] = [];
      let columns: string[] = [];
      let bytes = 0;
      let truncated = false;
      let affected: number | null = null;
      let timer: NodeJS.Timeout | null = setTimeout(() => {
        // MySQL has no notice while a statement is held: past the hold timeout, give up.
        reject(new ToolRefusal(`no answer within ${Math.round(limits.holdTimeoutMs / 1000)} s (the statement may be held for approval: see "airlock approvals list")`, 'denied', 'AIRLOCK_APPROVAL_TIMEOUT'));
        conn.destroy();
      }, limits.holdTimeoutMs);
      const stopTimer = (): void => {
        if (timer !== null) clearTimeout(timer);
        timer = null;
      };
      const q = conn.query(sql);
      q.on('fields', (fields: Array<{ name: string }> | undefined) => {
        stopTimer();
        if (columns.length === 0 && fields !== undefined) columns = fields.map((f) => f.name);
      });
      q.on('result', (row: unknown) => {
        stopTimer();
        if (truncated) return;
        if (!Array.isArray(row)) {
          const r = row as { affectedRows?: number };
          if (typeof r.affectedRows === 'number') affected = r.affectedRows;
          return;
        }
        const value = row.map(jsonValue);
        const size = Buffer.byteLength(JSON.stringify(value));
        if (rows.length >= limits.maxRows || bytes + size > limits.maxBytes) {
          truncated = true;
          resolve({ columns, rows, rowCount: rows.length, command: 'SELECT', truncated: true, notices: [] });
          conn.destroy();
          return;
        }
        bytes += size;
        rows.push(value);
      });
      q.on('error', (e: MysqlError) => {
        stopTimer();
        if (truncated) return;
        const denied = e.errno === 1142 || e.errno === 1227 || e.errno === 1045;
        reject(new ToolRefusal(e.message, denied ? 'denied' : 'error', e.sqlState ?? e.code));
      });
      q.on('end', () => {
        stopTimer();
        if (truncated) return;
        resolve({ columns, rows, rowCount: affected ?? rows.length, command: columns.length > 0 ? 'SELECT' : '', truncated: false, notices: [] });
      });
    });
  } catch (e) {
    if (e instanceof ToolRefusal) throw e;
    throw new ToolRefusal(e instanceof Error ? `cannot reach connection ${target.name}: ${e.message}` : String(e), 'error');
  } finally {
    signal?.removeEventListener('abort', onAbort);
    conn.end(() => undefined);
    conn.destroy();
  }
}
