/**
 * The MCP server (issue 10): the SDK's own Client drives `airlock mcp` over stdio (and the
 * /mcp route over Streamable HTTP) against a real PostgreSQL through airlock. The agent
 * sees connection names and results under policy; never a credential or its token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { run } from '../harness/clients.js';

const UPSTREAM_PASSWORD = 'mcp-upstream-pw-7f3a';
let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let adminUrl: string;
let agentToken: string;
let dbaToken: string;
const stderrs: string[] = [];
const results: string[] = [];

beforeAll(async () => {
  issuer = await createTestIssuer();
  const db = await startAppDb({
    password: UPSTREAM_PASSWORD,
    setupSql: `CREATE TABLE customers (id int primary key, name text, email text, ssn text);
      INSERT INTO customers SELECT g, 'name' || g, 'user' || g || '@example.com', '123-45-' || lpad(g::text, 4, '0') FROM generate_series(1, 500) g;
      CREATE TABLE orders (id int primary key, amount int); INSERT INTO orders SELECT g, g FROM generate_series(1, 5) g;`,
  });
  upstream = db.upstream;
  const port = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  airlock = await startAirlock({
    state_dir: join(db.dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile, default_kind: 'human' }] },
    connections: [db.connection('appdb', port, { allow_groups: ['agents', 'dba'] })],
    rules: [
      { name: 'no-unbounded-writes', when: { statements: ['update', 'delete'], without_where: true }, effect: 'deny', reason: 'UPDATE/DELETE need a WHERE clause' },
      { name: 'orders-writes-need-a-dba', when: { groups: ['agents'], statements: ['update'], tables: ['public.orders'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' },
      { name: 'pii', when: { groups: ['agents'] }, effect: 'mask', columns: ['public.customers.ssn', 'public.customers.email'], method: 'redact' },
    ],
  });
  agentToken = await issuer.token({ sub: 'claude', groups: ['agents'], airlock_kind: 'agent' });
  dbaToken = await issuer.token({ sub: 'bob', groups: ['dba'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
});

async function stdioClient(env: Record<string, string>, extraArgs: string[] = []): Promise<Client> {
  const { cmd, argv } = airlockCommand(['mcp', '--admin', adminUrl, '--hold-timeout', '60s', ...extraArgs]);
  const transport = new StdioClientTransport({ command: cmd, args: argv, env: { PATH: process.env.PATH ?? '', ...env }, stderr: 'pipe', cwd: join(import.meta.dirname, '../..') });
  let err = '';
  transport.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const client = new Client({ name: 'test-agent', version: '9.9.9' });
  await client.connect(transport);
  const close = client.close.bind(client);
  client.close = async () => {
    await close();
    stderrs.push(err);
  };
  return client;
}

function text(r: unknown): string {
  const t = ((r as CallToolResult).content[0] as { text?: string } | undefined)?.text ?? '';
  results.push(t);
  return t;
}

describe('airlock mcp over stdio', () => {
  let client: Client;
  beforeAll(async () => {
    client = await stdioClient({ AIRLOCK_TOKEN: agentToken });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
  });

  it('offers the tools with descriptions and schemas', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['describe', 'exec', 'http_request', 'list_connections', 'query']);
    const query = tools.find((t) => t.name === 'query');
    expect(query?.description).toMatch(/ONE SQL statement/);
    expect(query?.inputSchema.required).toEqual(expect.arrayContaining(['connection', 'sql']));
  });

  it('lists connections by name with the rules that apply, never an address upstream or a secret', async () => {
    const r = await client.callTool({ name: 'list_connections', arguments: {} });
    const t = text(r);
    const list = JSON.parse(t) as Array<{ name: string; protocol: string; rules: Array<{ rule: string }>; masked: Array<{ rule: string }> }>;
    expect(list.map((c) => c.name)).toEqual(['appdb']);
    expect(list[0]?.protocol).toBe('postgres');
    expect(list[0]?.rules.map((x) => x.rule)).toEqual(['no-unbounded-writes', 'orders-writes-need-a-dba']);
    expect(list[0]?.masked.map((x) => x.rule)).toEqual(['pii']);
    expect(t).not.toContain(String(upstream.port));
  });

  it('describes tables and marks masked columns', async () => {
    const r = await client.callTool({ name: 'describe', arguments: { connection: 'appdb', table: 'customers' } });
    const d = JSON.parse(text(r)) as { tables: Array<{ table: string; columns: Array<{ name: string; masked?: string }> }> };
    const cols = d.tables[0]?.columns ?? [];
    expect(cols.map((c) => c.name)).toEqual(['id', 'name', 'email', 'ssn']);
    expect(cols.find((c) => c.name === 'ssn')?.masked).toMatch(/redact.*pii/);
    expect(cols.find((c) => c.name === 'name')?.masked).toBeUndefined();
  });

  it('queries with masked columns masked, under any alias', async () => {
    const r = await client.callTool({ name: 'query', arguments: { connection: 'appdb', sql: 'SELECT id, ssn AS x, upper(email) AS e, name FROM customers WHERE id = 7' } });
    const q = JSON.parse(text(r)) as { columns: string[]; rows: unknown[][]; truncated: boolean };
    expect(q.columns).toEqual(['id', 'x', 'e', 'name']);
    expect(q.rows[0]?.[0]).toBe(7);
    expect(q.rows[0]?.[3]).toBe('name7');
    expect(JSON.stringify(q.rows)).not.toContain('123-45-0007');
    expect(JSON.stringify(q.rows).toLowerCase()).not.toContain('user7@example.com');
    expect(q.truncated).toBe(false);
  });

  it('truncates at max_rows and says so', async () => {
    const r = await client.callTool({ name: 'query', arguments: { connection: 'appdb', sql: 'SELECT id, name FROM customers ORDER BY id', max_rows: 10 } });
    const q = JSON.parse(text(r)) as { rows: unknown[][]; truncated: boolean };
    expect(q.rows).toHaveLength(10);
    expect(q.truncated).toBe(true);
  });

  it('returns a denial as a tool error naming the rule and the reason', async () => {
    const r = await client.callTool({ name: 'query', arguments: { connection: 'appdb', sql: 'DELETE FROM orders' } });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/denied by rule no-unbounded-writes: .*WHERE/);
    expect(await upstream.psql('select count(*) from orders', { db: 'appdb' })).toBe('5');
  });

  it('refuses a second statement in one call', async () => {
    const r = await client.callTool({ name: 'query', arguments: { connection: 'appdb', sql: 'SELECT 1; SELECT 2' } });
    expect(r.isError).toBe(true);
  });

  it('holds a statement, sends progress with the approval id, and runs it once approved from another process', async () => {
    const progress: string[] = [];
    const call = client.callTool({ name: 'query', arguments: { connection: 'appdb', sql: 'UPDATE orders SET amount = 100 WHERE id = 1' } }, undefined, {
      onprogress: (p) => progress.push(p.message ?? ''),
      timeout: 60_000,
    });
    const deadline = Date.now() + 30_000;
    while (progress.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const id = /id ([A-Za-z0-9_-]+)/.exec(progress[0] ?? '')?.[1];
    expect(id).toBeDefined();
    const { cmd, argv } = airlockCommand(['approvals', 'approve', id ?? '']);
    const approved = await run(cmd, argv, { env: { AIRLOCK_ADMIN_URL: adminUrl, AIRLOCK_TOKEN: dbaToken } });
    expect(approved.code).toBe(0);
    const r = await call;
    expect(r.isError).toBeFalsy();
    expect(await upstream.psql('select amount from orders where id = 1', { db: 'appdb' })).toBe('100');
  }, 60_000);

  it('says which connection does not exist', async () => {
    const r = await client.callTool({ name: 'query', arguments: { connection: 'nope', sql: 'SELECT 1' } });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/no connection named "nope"/);
  });
});

describe('tokens', () => {
  it('an expired token fails with a clear tool error', async () => {
    const expired = await issuer.token({ sub: 'claude', groups: ['agents'] }, { ttlSeconds: -120 });
    const client = await stdioClient({ AIRLOCK_TOKEN: expired });
    const r = await client.callTool({ name: 'list_connections', arguments: {} });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/expired/);
    await client.close();
  }, 60_000);

  it('refuses to start without a token', async () => {
    const { cmd, argv } = airlockCommand(['mcp', '--admin', adminUrl]);
    const r = await run(cmd, argv, { env: { PATH: process.env.PATH ?? '', AIRLOCK_TOKEN: '' }, timeoutMs: 30_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/AIRLOCK_TOKEN/);
  }, 60_000);
});

describe('MCP over Streamable HTTP on the admin API', () => {
  it('serves the same tools to a bearer-authenticated agent, and refuses without a token', async () => {
    const client = new Client({ name: 'remote-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL('/mcp', adminUrl), { requestInit: { headers: { authorization: `Bearer ${agentToken}` } } }));
    const r = await client.callTool({ name: 'query', arguments: { connection: 'appdb', sql: 'SELECT ssn FROM customers WHERE id = 3' } });
    const q = JSON.parse(text(r)) as { rows: unknown[][] };
    expect(q.rows).toHaveLength(1);
    expect(JSON.stringify(q.rows)).not.toContain('123-45-0003');
    await client.close();

    const res = await fetch(new URL('/mcp', adminUrl), { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }) });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
  }, 60_000);
});

describe('audit and secrets', () => {
  it('records every tool call with the agent identity and the MCP client', async () => {
    await new Promise((r) => setTimeout(r, 500));
    const { cmd, argv } = airlockCommand(['audit', 'verify', '--config', airlock.configFile]);
    expect((await run(cmd, argv)).code).toBe(0);
    const { readdirSync, readFileSync } = await import('node:fs');
    const dir = join(airlock.stateDir, 'audit');
    const lines = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n')).filter((l) => l.includes('mcp.tool_call'));
    const events = lines.map((l) => (JSON.parse(l) as { event: { identity: { subject: string; kind: string }; tool: string; outcome: string; client?: { name: string } } }).event);
    const denied = events.find((e) => e.outcome === 'denied');
    expect(denied?.identity).toMatchObject({ subject: 'claude', kind: 'agent' });
    expect(denied?.tool).toBe('query');
    expect(events.some((e) => e.client?.name === 'test-agent')).toBe(true);
    expect(events.some((e) => e.client?.name === 'remote-agent')).toBe(true);
  });

  it('no tool result, log line or audit event holds the token or the upstream password', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const dir = join(airlock.stateDir, 'audit');
    const audit = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    for (const haystack of [results.join('\n'), stderrs.join('\n'), airlock.output(), audit]) {
      expect(haystack).not.toContain(UPSTREAM_PASSWORD);
      expect(haystack).not.toContain(agentToken);
      expect(haystack).not.toContain(agentToken.split('.')[2] ?? 'x');
    }
  });
});
