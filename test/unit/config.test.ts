import { describe, expect, it } from 'vitest';
import { parseConfigText, validateConfig } from '../../app/config.js';

const base = `
state_dir: ./var/x
connections:
  - name: appdb
    protocol: postgres
    listen: 127.0.0.1:15432
    upstream: { host: db.internal, port: 5432, database: app }
    credentials: { type: static, username: app, password: "\${env:APP_DB_PASSWORD}" }
    allow_groups: [dba]
`;

describe('config', () => {
  it('accepts the documented example shape with defaults', () => {
    const r = parseConfigText(base, '/etc/airlock');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.state_dir).toBe('/etc/airlock/var/x');
    const c = r.config.connections[0];
    expect(c?.listen).toEqual({ host: '127.0.0.1', port: 15432 });
    expect(c?.protocol === 'postgres' && c.upstream.tls).toBe('disable');
    expect(r.config.auth.dev_issuer).toBe(false);
  });

  it('reports each problem with its path', () => {
    const r = parseConfigText(base.replace('port: 5432', 'port: "x"').replace('allow_groups: [dba]', 'allow_groups: [dba]\n    colour: blue'));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const lines = r.problems.map((p) => `${p.path}: ${p.message}`);
    expect(lines).toContain('connections[0].upstream.port: expected a number');
    expect(lines).toContain('connections[0]: unknown key "colour"');
  });

  it('rejects unknown top-level keys, bad listen addresses, unknown statement kinds and malformed globs', () => {
    const r = validateConfig({ nonsense: 1, connections: [{ name: 'a', protocol: 'postgres', listen: 'nope', upstream: { host: 'h', database: 'd' }, credentials: { type: 'static', username: 'u', password: 'p' } }], rules: [{ name: 'r', when: { statements: ['dorp'], tables: ['public.[x'] }, effect: 'deny' }] });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.problems.map((p) => p.path);
    expect(paths).toContain('(top level)');
    expect(paths).toContain('connections[0].listen');
    expect(paths).toContain('rules[0].when.statements[0]');
    expect(paths).toContain('rules[0].when.tables[0]');
  });

  it('rejects duplicate names and listen addresses', () => {
    const doc = parseConfigText(base + base.split('connections:\n')[1]!.replace('127.0.0.1:15432', '127.0.0.1:15432'));
    expect(doc.ok).toBe(false);
  });

  it('takes the approvals webhook as a URL or a secret reference, nothing else', () => {
    expect(validateConfig({ approvals: { webhook: 'https://hooks.example.com/x' } }).ok).toBe(true);
    expect(validateConfig({ approvals: { webhook: '${file:/etc/airlock/hook}' } }).ok).toBe(true);
    expect(validateConfig({ approvals: { webhook: 'not a url' } }).ok).toBe(false);
  });

  it('gives the PostgreSQL state store lease defaults, and refuses a lease timeout shorter than two heartbeats', () => {
    const url = '${file:/etc/airlock/state-url}';
    const ok = validateConfig({ state: { backend: 'postgres', url } });
    expect(ok.ok).toBe(true);
    if (ok.ok) expect(ok.config.state).toMatchObject({ heartbeat_interval: 10_000, lease_timeout: 60_000 });
    const short = validateConfig({ state: { backend: 'postgres', url, heartbeat_interval: '250ms', lease_timeout: '1500ms' } });
    expect(short.ok).toBe(true);
    const tight = validateConfig({ state: { backend: 'postgres', url, heartbeat_interval: '30s', lease_timeout: '45s' } });
    expect(tight.ok).toBe(false);
    if (!tight.ok) expect(tight.problems.map((p) => `${p.path}: ${p.message}`)).toContain('state.lease_timeout: must be at least twice heartbeat_interval');
    const tiny = validateConfig({ state: { backend: 'postgres', url, heartbeat_interval: '10ms' } });
    expect(tiny.ok).toBe(false);
    if (!tiny.ok) expect(tiny.problems.map((p) => p.path)).toContain('state.heartbeat_interval');
    // The embedded store has no leases: the keys are unknown there.
    expect(validateConfig({ state: { backend: 'embedded', lease_timeout: '60s' } }).ok).toBe(false);
  });

  it('reports YAML syntax errors', () => {
    const r = parseConfigText('connections: [');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]?.path).toBe('(yaml)');
  });

  it('never resolves or shows secret references', () => {
    const r = parseConfigText(base.replace('allow_groups: [dba]', 'allow_groups: 5'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(JSON.stringify(r.problems)).not.toContain('APP_DB_PASSWORD');
  });
});

describe('config/airlock.example.yaml', () => {
  it('is valid: every protocol example in it uses keys the schema knows', async () => {
    const { readFileSync } = await import('node:fs');
    const { resolve } = await import('node:path');
    const file = resolve(import.meta.dirname, '../../config/airlock.example.yaml');
    const r = parseConfigText(readFileSync(file, 'utf8'), '/etc/airlock');
    expect(r.ok ? 'ok' : r.problems).toBe('ok');
    if (!r.ok) return;
    expect(r.config.connections.map((c) => c.protocol)).toEqual(['postgres', 'mysql', 'ssh', 'http']);
  });

  it('refuses an ssh target without known_hosts or a pinned host key (no trust on first use)', () => {
    const r = parseConfigText(`connections:
  - name: web1
    protocol: ssh
    listen: 127.0.0.1:2222
    upstream: { host: web1.internal }
    credentials: { type: ssh-certificate, ca_key: x }
`);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems[0]?.path).toBe('connections[0].upstream');
    expect(r.problems[0]?.message).toMatch(/known_hosts or host_key_fingerprint/);
  });
});
