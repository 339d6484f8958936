/**
 * The MCP server: tools that let an AI agent query databases, run commands and call APIs
 * through airlock as its own identity. It is a thin client of airlock's listeners; every
 * rule, approval, mask and audit event applies exactly as for psql, mysql, ssh or curl.
 * The model sees connection names, never a credential or the agent's token.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { z } from 'zod';
import type { ConnectionSummary } from '../admin/connections.js';
import { GlobSet } from '../policy/glob.js';
import type { AirlockApi, ToolCallEvent } from './api.js';
import { ToolRefusal, type HoldHooks, type Limits, type McpBackend, type McpBackends, type QueryResult, type Target } from './backends/types.js';

export interface McpOptions {
  api: AirlockApi;
  /** Only these connections (by name) are offered; default: every connection the identity may open. */
  only?: string[];
  limits: Limits;
  /** What each protocol lends the tools (its adapter's `mcp`), composed in app/adapters.ts. */
  backends: McpBackends;
  /** PEM CA for listeners with TLS. */
  ca?: string;
  version: string;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

const VERSION_FALLBACK = '0.0.0';

export function createMcpServer(options: McpOptions): McpServer {
  const server = new McpServer({ name: 'airlock', version: options.version || VERSION_FALLBACK }, { capabilities: { logging: {} } });
  const { api, limits } = options;

  const connections = async (): Promise<ConnectionSummary[]> => {
    const all = await api.connections();
    return options.only === undefined ? all : all.filter((c) => options.only?.includes(c.name));
  };
  /** The protocols whose backend has this tool's function, in the adapters' order. */
  const protocolsWith = (tool: keyof McpBackend): Array<ConnectionSummary['protocol']> =>
    (Object.keys(options.backends) as Array<ConnectionSummary['protocol']>).filter((p) => options.backends[p]?.[tool] !== undefined);
  const backend = <T extends keyof McpBackend>(c: ConnectionSummary, tool: T): NonNullable<McpBackend[T]> => {
    const f = options.backends[c.protocol]?.[tool];
    if (f === undefined) throw new ToolRefusal(`connection "${c.name}" is ${c.protocol}; this tool works with ${protocolsWith(tool).join(' or ')} connections`, 'error');
    return f as NonNullable<McpBackend[T]>;
  };
  const find = async (name: string, tool: keyof McpBackend): Promise<ConnectionSummary> => {
    const protocols = protocolsWith(tool);
    const all = await connections();
    const c = all.find((x) => x.name === name);
    if (c === undefined) {
      throw new ToolRefusal(`no connection named "${name}" is available to you; call list_connections to see the ones you may use`, 'error');
    }
    if (!protocols.includes(c.protocol)) throw new ToolRefusal(`connection "${name}" is ${c.protocol}; this tool works with ${protocols.join(' or ')} connections`, 'error');
    return c;
  };
  const target = (c: ConnectionSummary): Target => ({
    name: c.name,
    host: c.listen.host === '0.0.0.0' || c.listen.host === '::' ? api.dialHost : c.listen.host,
    port: c.listen.port,
    tls: c.tls,
  });
  const clientInfo = (): { name: string; version: string } | undefined => {
    const v = server.server.getClientVersion();
    return v === undefined ? undefined : { name: v.name, version: v.version };
  };
  const holdHooks = (extra: Extra, onHeld: (id: string) => void): HoldHooks => ({
    onHold: (id, message) => {
      onHeld(id);
      const token = extra._meta?.progressToken;
      if (token !== undefined) {
        void extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 0, message } }).catch(() => undefined);
      }
      void server.server.sendLoggingMessage({ level: 'notice', data: message }).catch(() => undefined);
    },
  });

  /** Runs a tool body; refusals become tool errors a model can act on, and every call is audited. */
  const run = async (
    tool: string,
    request: ToolCallEvent['request'] & { connection?: string },
    body: (held: (id: string) => void) => Promise<{ result: unknown; truncated?: boolean }>,
  ): Promise<CallToolResult> => {
    const started = Date.now();
    let heldId: string | null = null;
    const event = (outcome: ToolCallEvent['outcome'], detail?: string): ToolCallEvent => {
      const client = clientInfo();
      return {
        tool,
        ...(request.connection === undefined ? {} : { connection: request.connection }),
        request,
        outcome,
        ...(detail === undefined ? {} : { detail }),
        ...(client === undefined ? {} : { client }),
        durationMs: Date.now() - started,
      };
    };
    try {
      const { result, truncated } = await body((id) => {
        heldId = id;
      });
      await api.recordToolCall(event(truncated === true ? 'truncated' : 'ok', heldId === null ? undefined : `approved ${heldId}`)).catch(() => undefined);
      return { content: [{ type: 'text', text: JSON.stringify(result, null, 1) }] };
    } catch (e) {
      const refusal = e instanceof ToolRefusal ? e : new ToolRefusal(e instanceof Error ? e.message : String(e), 'error');
      await api.recordToolCall(event(refusal.kind === 'denied' ? 'denied' : 'error', refusal.message)).catch(() => undefined);
      const prefix = refusal.kind === 'denied' ? 'airlock refused this: ' : 'error: ';
      return { isError: true, content: [{ type: 'text', text: `${prefix}${refusal.message}` }] };
    }
  };

  server.registerTool(
    'list_connections',
    {
      title: 'List connections',
      description:
        'Lists the databases, hosts and APIs you may reach through airlock, by name, with their protocol (postgres, mysql, ssh, http), ' +
        'the logins you may use (ssh), the policy rules that apply to you there (deny / approve = needs a human approval / allow) ' +
        'and which columns or values are masked for you. Use the names with the other tools. You never need a password.',
      inputSchema: {},
    },
    async () =>
      run('list_connections', {}, async () => ({
        result: (await connections()).map((c) => ({
          name: c.name,
          protocol: c.protocol,
          ...(c.logins === undefined ? {} : { logins: c.logins }),
          rules: c.rules.map((r) => ({ rule: r.name, effect: r.effect, ...(r.reason === undefined ? {} : { reason: r.reason }), when: r.when })),
          masked: c.masked,
        })),
      })),
  );

  server.registerTool(
    'describe',
    {
      title: 'Describe a SQL connection',
      description:
        'Lists the tables and columns (with types) of a postgres or mysql connection, read through airlock. ' +
        'Columns that airlock masks for you are marked "masked": their values come back redacted or pseudonymised. ' +
        'Optionally narrow to one schema and/or table.',
      inputSchema: {
        connection: z.string().describe('connection name from list_connections'),
        schema: z.string().optional().describe('only this schema (postgres) or database (mysql)'),
        table: z.string().optional().describe('only this table'),
      },
    },
    async (args, extra) =>
      run('describe', { connection: args.connection, ...(args.schema === undefined ? {} : { schema: args.schema }), ...(args.table === undefined ? {} : { table: args.table }) }, async (held) => {
        const c = await find(args.connection, 'query');
        const lit = (s: string): string => `'${s.replace(/\\/g, c.protocol === 'mysql' ? '\\\\' : '\\').replace(/'/g, "''")}'`;
        const filters: string[] = [];
        if (args.schema !== undefined) filters.push(`table_schema = ${lit(args.schema)}`);
        else filters.push(c.protocol === 'postgres' ? "table_schema NOT IN ('pg_catalog', 'information_schema')" : 'table_schema = DATABASE()');
        if (args.table !== undefined) filters.push(`table_name = ${lit(args.table)}`);
        const sql = `SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns WHERE ${filters.join(' AND ')} ORDER BY table_schema, table_name, ordinal_position`;
        const r = await sqlQuery(c, sql, { ...limits, maxRows: 5000 }, holdHooks(extra, held), extra.signal);
        const masks = c.masked.filter((m) => m.columns !== undefined).map((m) => ({ rule: m.rule, method: m.method, set: new GlobSet(m.columns ?? []) }));
        const tables = new Map<string, { schema: string; table: string; columns: Array<{ name: string; type: string; masked?: string }> }>();
        for (const row of r.rows) {
          const [schema, table, column, type] = row.map((v) => String(v));
          const key = `${schema}.${table}`;
          let t = tables.get(key);
          if (t === undefined) {
            t = { schema: schema ?? '', table: table ?? '', columns: [] };
            tables.set(key, t);
          }
          const m = masks.find((x) => x.set.match(`${schema}.${table}.${column}`) !== null);
          t.columns.push({ name: column ?? '', type: type ?? '', ...(m === undefined ? {} : { masked: `${m.method} (rule ${m.rule})` }) });
        }
        const detectors = c.masked.filter((m) => m.detect !== undefined).map((m) => ({ rule: m.rule, detect: m.detect }));
        return { result: { connection: c.name, tables: [...tables.values()], ...(detectors.length === 0 ? {} : { values_masked_by_content: detectors }) }, truncated: r.truncated };
      }),
  );

  server.registerTool(
    'query',
    {
      title: 'Run one SQL statement',
      description:
        'Runs ONE SQL statement on a postgres or mysql connection through airlock, as you. Returns column names and rows as JSON, ' +
        'at most max_rows rows / max_bytes bytes ("truncated": true when cut: add a LIMIT or narrow the query). ' +
        'Masked columns come back masked. A statement that policy denies returns an error naming the rule and the reason: ' +
        'change the statement accordingly (e.g. add a WHERE clause) rather than retrying it. A statement that needs approval waits for a human.',
      inputSchema: {
        connection: z.string().describe('connection name from list_connections'),
        sql: z.string().min(1).describe('exactly one SQL statement'),
        max_rows: z.number().int().min(1).max(100_000).optional().describe(`row cap (default ${limits.maxRows})`),
      },
    },
    async (args, extra) =>
      run('query', { connection: args.connection, sql: args.sql }, async (held) => {
        const c = await find(args.connection, 'query');
        const r = await sqlQuery(c, args.sql, { ...limits, maxRows: Math.min(args.max_rows ?? limits.maxRows, 100_000) }, holdHooks(extra, held), extra.signal);
        return {
          result: { columns: r.columns, rows: r.rows, row_count: r.rowCount, ...(r.command === '' ? {} : { command: r.command }), truncated: r.truncated, ...(r.notices.length === 0 ? {} : { notices: r.notices }) },
          truncated: r.truncated,
        };
      }),
  );

  server.registerTool(
    'exec',
    {
      title: 'Run a command over SSH',
      description:
        'Runs one shell command on an ssh connection through airlock, as you, and returns stdout, stderr and the exit code (output capped; "truncated" when cut). ' +
        'login defaults to the first login list_connections shows for that connection. A command that policy denies returns an error naming the rule; ' +
        'one that needs approval waits for a human.',
      inputSchema: {
        connection: z.string().describe('connection name from list_connections'),
        command: z.string().min(1).describe('the command line'),
        login: z.string().optional().describe('the remote login to use'),
      },
    },
    async (args, extra) =>
      run('exec', { connection: args.connection, command: args.command, ...(args.login === undefined ? {} : { login: args.login }) }, async (held) => {
        const c = await find(args.connection, 'exec');
        const login = args.login ?? c.logins?.[0];
        if (login === undefined) throw new ToolRefusal(`you have no login on ${c.name}`, 'denied');
        const fingerprint = c.host_key_fingerprint;
        const r = await backend(c, 'exec')(target(c), { login, token: await api.token(), ...(fingerprint === undefined ? {} : { hostKeyFingerprint: fingerprint }) }, args.command, limits, holdHooks(extra, held), extra.signal);
        return { result: { exit_code: r.exitCode, ...(r.signal === undefined ? {} : { signal: r.signal }), stdout: r.stdout, stderr: r.stderr, truncated: r.truncated }, truncated: r.truncated };
      }),
  );

  server.registerTool(
    'http_request',
    {
      title: 'Call an HTTP API',
      description:
        'Sends one HTTP request to an http connection through airlock, which adds the real credential upstream: never send an API key yourself. ' +
        'path is the path and query on that API (e.g. "/v1/items?limit=10"). Returns status, headers and body (capped; "truncated" when cut). ' +
        'A request that policy denies returns an error naming the rule.',
      inputSchema: {
        connection: z.string().describe('connection name from list_connections'),
        method: z.string().default('GET').describe('GET, POST, PUT, PATCH, DELETE …'),
        path: z.string().min(1).describe('path and query, starting with /'),
        headers: z.record(z.string(), z.string()).optional().describe('extra request headers (no Authorization)'),
        body: z.string().optional().describe('request body (e.g. JSON text)'),
      },
    },
    async (args, extra) =>
      run('http_request', { connection: args.connection, method: args.method, path: args.path }, async () => {
        const c = await find(args.connection, 'request');
        const authHeader = c.auth_header ?? 'authorization';
        const r = await backend(c, 'request')(target(c), await api.token(), authHeader, { method: args.method, path: args.path, ...(args.headers === undefined ? {} : { headers: args.headers }), ...(args.body === undefined ? {} : { body: args.body }) }, limits.maxBytes, limits.holdTimeoutMs + 60_000, extra.signal);
        return { result: r, truncated: r.truncated };
      }),
  );

  async function sqlQuery(c: ConnectionSummary, sql: string, l: Limits, hooks: HoldHooks, signal: AbortSignal): Promise<QueryResult> {
    const auth = { user: await api.subject(), token: await api.token(), ...(options.ca === undefined ? {} : { ca: options.ca }) };
    return backend(c, 'query')(target(c), auth, sql, l, hooks, signal);
  }

  return server;
}
