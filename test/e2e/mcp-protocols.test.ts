/**
 * The MCP server (issue 10) over the other gateways: the SDK's Client drives `airlock mcp`
 * on stdio through airlock to a real MariaDB (query, masked column), a real sshd (exec,
 * a denied command) and a real HTTP upstream (http_request with the key injected and
 * never shown) — and no tool result, log or audit event holds the token or a secret.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { startSshd, sshdAvailable, type SshServer } from '../harness/sshd.js';
import { startHttpUpstream, type HttpUpstream } from '../harness/http-upstream.js';

const MARIA_PASSWORD = 'mcp-maria-pw-5c1d';
const API_KEY = 'sk-mcp-api-key-0a9b8c7d6e';
const withSsh = sshdAvailable();
let maria: LocalMaria;
let sshd: SshServer | null = null;
let api: HttpUpstream;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let client: Client;
let token = '';
let stderr = '';
const results: string[] = [];

beforeAll(async () => {
  issuer = await createTestIssuer();
  maria = await startLocalMaria({ password: MARIA_PASSWORD, setupSql: "CREATE TABLE people (id int primary key, name varchar(40), ssn varchar(20)); INSERT INTO people VALUES (1, 'ann', '123-45-6789');" });
  if (withSsh) sshd = await startSshd();
  api = await startHttpUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'airlock-mcp2-'));
  writeFileSync(join(dir, 'key'), API_KEY, { mode: 0o600 });
  const ports = { db: await freePort(), web: await freePort(), api: await freePort(), admin: await freePort() };
  const connections: Array<Record<string, unknown>> = [
    maria.connection('shop', ports.db, { allow_groups: ['agents'] }),
    { name: 'api', protocol: 'http', listen: `127.0.0.1:${ports.api}`, upstream: { base_url: api.url }, credentials: { type: 'header', name: 'Authorization', value: `Bearer \${file:${join(dir, 'key')}}` }, allow_groups: ['agents'] },
  ];
  if (sshd !== null) {
    connections.push({
      name: 'web1', protocol: 'ssh', listen: `127.0.0.1:${ports.web}`,
      upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
      credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}` },
      allow_groups: ['agents'], allowed_logins: { agents: [sshd.user] },
    });
  }
  airlock = await startAirlock({
    state_dir: join(dir, 'state'),
    admin: { listen: `127.0.0.1:${ports.admin}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections,
    rules: [
      { name: 'ssn', when: { groups: ['agents'] }, effect: 'mask', columns: ['appdb.people.ssn'], method: 'redact' },
      { name: 'no-rm', when: { programs: ['rm'] }, effect: 'deny', reason: 'nothing is deleted through airlock' },
    ],
  });
  token = await issuer.token({ sub: 'claude', groups: ['agents'], airlock_kind: 'agent' });
  const { cmd, argv } = airlockCommand(['mcp', '--admin', `http://127.0.0.1:${ports.admin}`]);
  const transport = new StdioClientTransport({ command: cmd, args: argv, env: { PATH: process.env.PATH ?? '', AIRLOCK_TOKEN: token }, stderr: 'pipe', cwd: join(import.meta.dirname, '../..') });
  transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  client = new Client({ name: 'agent-under-test', version: '1.0.0' });
  await client.connect(transport);
}, 180_000);

afterAll(async () => {
  await client?.close();
  await airlock?.stop();
  await maria?.stop();
  await sshd?.stop();
  await api?.close();
});

function text(r: unknown): string {
  const t = ((r as CallToolResult).content[0] as { text?: string } | undefined)?.text ?? '';
  results.push(t);
  return t;
}

describe('MCP over MySQL, SSH and HTTP connections', () => {
  it('lists every connection with its protocol and, for ssh, the logins', async () => {
    const list = JSON.parse(text(await client.callTool({ name: 'list_connections', arguments: {} }))) as Array<{ name: string; protocol: string; logins?: string[] }>;
    expect(list.map((c) => `${c.name}:${c.protocol}`).sort()).toEqual(withSsh ? ['api:http', 'shop:mysql', 'web1:ssh'] : ['api:http', 'shop:mysql']);
    if (withSsh) expect(list.find((c) => c.name === 'web1')?.logins).toEqual([sshd?.user]);
  });

  it('query on MySQL, with the masked column masked', async () => {
    const r = await client.callTool({ name: 'query', arguments: { connection: 'shop', sql: 'SELECT name, ssn FROM people' } });
    const q = JSON.parse(text(r)) as { columns: string[]; rows: unknown[][] };
    expect(q.columns).toEqual(['name', 'ssn']);
    expect(q.rows[0]?.[0]).toBe('ann');
    expect(JSON.stringify(q.rows)).not.toContain('123-45-6789');
  });

  it.skipIf(!withSsh)('exec over SSH; a denied command is a tool error naming the rule', async () => {
    const ok = JSON.parse(text(await client.callTool({ name: 'exec', arguments: { connection: 'web1', command: 'echo hi; exit 4' } }))) as { stdout: string; exit_code: number };
    expect(ok).toMatchObject({ stdout: 'hi\n', exit_code: 4 });
    const denied = await client.callTool({ name: 'exec', arguments: { connection: 'web1', command: 'rm -rf /tmp/x' } });
    expect(denied.isError).toBe(true);
    expect(text(denied)).toContain('denied by rule no-rm: nothing is deleted through airlock');
  });

  it('http_request: airlock adds the key upstream; it never reaches the model', async () => {
    const r = JSON.parse(text(await client.callTool({ name: 'http_request', arguments: { connection: 'api', method: 'GET', path: '/echo' } }))) as { status: number; body: string };
    expect(r.status).toBe(200);
    expect(api.received[api.received.length - 1]?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(r.body).not.toContain(API_KEY);
  });

  it('no tool result, log line or audit event holds the token, the key or the database password', async () => {
    const auditDir = join(airlock.stateDir, 'audit');
    const audit = readdirSync(auditDir).filter((f) => f.endsWith('.jsonl')).map((f) => readFileSync(join(auditDir, f), 'utf8')).join('\n');
    expect(audit).toContain('"mcp.tool_call"');
    for (const h of [results.join('\n'), stderr, airlock.output(), audit]) {
      for (const secret of [token, API_KEY, MARIA_PASSWORD]) expect(h).not.toContain(secret);
    }
  });
});
