/**
 * A shared gateway-token signing key (issue 18): two daemons with the same auth.token_signing_key
 * accept each other's tokens from POST /v1/token; a daemon with its own per-node key refuses them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../app/dev/pgcluster.js';
import { startAppDb, type AppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { psql } from '../harness/clients.js';

interface Node { airlock: RunningAirlock; port: number; adminUrl: string }

let db: AppDb;
let issuer: TestIssuer;
let keyPem = '';
const nodes: Node[] = [];

async function startNode(name: string, tokenKey: string | undefined): Promise<Node> {
  const port = await freePort();
  const adminPort = await freePort();
  const airlock = await startAirlock({
    state_dir: join(db.dir, `state-${name}`),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }], ...(tokenKey === undefined ? {} : { token_signing_key: tokenKey }) },
    connections: [db.connection('appdb', port, { allow_groups: ['dev'] })],
  });
  return { airlock, port, adminUrl: `http://127.0.0.1:${adminPort}` };
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  db = await startAppDb({ password: 'token-key-upstream-pw', setupSql: 'CREATE TABLE notes (id int); INSERT INTO notes VALUES (7);' });
  keyPem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const keyFile = join(db.dir, 'token-key.pem');
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  const ref = `\${file:${keyFile}}`;
  nodes.push(...(await Promise.all([startNode('a', ref), startNode('b', ref), startNode('c', undefined)])));
}, 180_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.airlock.stop()));
  await db?.upstream.stop();
});

async function exchange(n: Node, token: string): Promise<string> {
  const res = await fetch(`${n.adminUrl}/v1/token`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"ttl_seconds":300}' });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

describe('auth.token_signing_key shared by two nodes', () => {
  it('a token exchanged on node A opens a psql session through node B; a node with its own key refuses it', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    const gatewayToken = await exchange(a, await issuer.token({ sub: 'alice', groups: ['dev'] }));
    const onB = await psql({ port: b.port, token: gatewayToken }, ['-At', '-c', 'select id from notes']);
    expect(onB.stderr).toBe('');
    expect(onB.stdout.trim()).toBe('7');
    // Node C signs with its own per-node key (gateway-token.jwk in its state_dir): A's token is refused.
    const onC = await psql({ port: c.port, token: gatewayToken }, ['-At', '-c', 'select id from notes']);
    expect(onC.code).not.toBe(0);
    expect(onC.stdout).toBe('');
    expect(onC.stderr).toMatch(/28000|authentication|token/i);
    // And a token C issues is refused by B.
    const fromC = await exchange(c, await issuer.token({ sub: 'alice', groups: ['dev'] }));
    expect((await psql({ port: b.port, token: fromC }, ['-At', '-c', 'select 1'])).code).not.toBe(0);
    // Both keyed nodes publish the same key (one kid) in their JWKS.
    const jwks = await Promise.all([a, b].map(async (n) => ((await (await fetch(`${n.adminUrl}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string; d?: string }> }).keys));
    expect(jwks[0]).toEqual(jwks[1]);
    expect(jwks[0]?.some((k) => k.d !== undefined)).toBe(false);
  });

  it('never prints the key', () => {
    const body = keyPem.split('\n')[1] ?? 'unreachable';
    for (const n of nodes) expect(n.airlock.output()).not.toContain(body);
  });
});
