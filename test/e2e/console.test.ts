/**
 * The web console (issue 19) in real headless Chromium against the real daemon: sign-in
 * through the dev issuer (authorization code + PKCE), the live approvals inbox while a real
 * psql waits on a held DROP TABLE, CSRF and forged decisions refused, statements shown as
 * text, the session transcript, SSH shell replay, and audit "verify now".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import pg from 'pg';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb } from '../harness/appdb.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { run, runTyped, spawnPsql } from '../harness/clients.js';
import { startSshd, sshdAvailable, type SshServer } from '../harness/sshd.js';
import { chromiumMissing, launchChromium } from '../harness/browser.js';

const missing = chromiumMissing();
if (missing !== null) console.warn(`console browser tests skipped: ${missing}`);
const sshOk = sshdAvailable();
const ROOT = join(import.meta.dirname, '../..');
const shot = (name: string): string => join(ROOT, 'docs', `console-${name}.png`);

let upstream: PgCluster;
let airlock: RunningAirlock;
let daemonConfig: Record<string, unknown> = {};
let earlierOutput = '';
let sshd: SshServer | null = null;
let browser: Browser;
let adminUrl = '';
let pgPort = 0;
let sshPort = 0;
const tokens: Record<string, string> = {};
const dialogs: string[] = [];
const pageErrors: string[] = [];

async function mint(sub: string, groups: string): Promise<string> {
  const { cmd, argv } = airlockCommand(['token', 'mint', '--config', airlock.configFile, '--sub', sub, '--groups', groups, '--ttl', '30m']);
  const r = await run(cmd, argv);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

async function signIn(who: 'alice' | 'bob'): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(`${adminUrl}/console`);
  await page.locator(`button[data-user="${who}"]`).click();
  await page.waitForURL(`${adminUrl}/console`);
  expect(await page.locator('.who').getAttribute('data-subject')).toBe(who);
  return { context, page };
}

/**
 * Polls a page expression from outside: page.waitForFunction compiles its predicate with
 * new Function, which the console's CSP (rightly) refuses; page.evaluate goes through CDP.
 */
async function until(page: Page, expr: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(expr))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${expr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const csrfOf = (page: Page): Promise<string | null> => page.locator('meta[name="airlock-csrf"]').getAttribute('content');

beforeAll(async () => {
  if (missing !== null) return;
  const db = await startAppDb({ password: 'console-pw', setupSql: 'CREATE TABLE victims (id int); CREATE TABLE keepers (id int); CREATE TABLE xss (id int);' });
  upstream = db.upstream;
  pgPort = await freePort();
  sshPort = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  if (sshOk) sshd = await startSshd();
  const connections: Array<Record<string, unknown>> = [db.connection('appdb', pgPort, { allow_groups: ['dba', 'dev', 'ops'] })];
  if (sshd !== null) {
    connections.push({
      name: 'web1',
      protocol: 'ssh',
      listen: `127.0.0.1:${sshPort}`,
      upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
      credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}`, ttl: '5m' },
      allow_groups: ['dev'],
      allowed_logins: { dev: [sshd.user] },
    });
  }
  daemonConfig = {
    state_dir: join(db.dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { dev_issuer: true },
    audit: { auditors: ['dba'] },
    connections,
    rules: [
      { name: 'ops-connect-needs-a-dba', when: { groups: ['ops'], statements: ['connect'] }, effect: 'approve', approvers: ['dba'], timeout: '120s', grant_for: '1h' },
      { name: 'drops-need-a-dba', when: { groups: ['dev'], statements: ['drop'] }, effect: 'approve', approvers: ['dba'], timeout: '120s' },
    ],
  };
  airlock = await startAirlock(daemonConfig);
  await airlock.waitForLog((l) => l.msg === 'admin API started');
  tokens.bob = await mint('bob', 'dev');
  tokens.carol = await mint('carol', 'ops');
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await airlock?.stop();
  await upstream?.stop();
  await sshd?.stop();
});

const tableExists = async (name: string): Promise<boolean> => (await upstream.psql(`select count(*) from pg_tables where tablename = '${name}'`, { db: 'appdb' })) === '1';

describe.skipIf(missing !== null)('web console in headless Chromium', () => {
  let alice: { context: BrowserContext; page: Page };
  let bob: { context: BrowserContext; page: Page };

  it('signs alice and bob in through the dev issuer with a locked-down cookie and a strict CSP', async () => {
    alice = await signIn('alice');
    bob = await signIn('bob');
    const cookies = await alice.context.cookies();
    const session = cookies.find((c) => c.name === 'airlock_console');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false });
    const res = await alice.context.request.get(`${adminUrl}/console`);
    expect(res.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers()['content-security-policy']).not.toContain('unsafe-inline');
    // Without a session the API answers 401 and pages send you to sign in.
    const anon = await browser.newContext();
    expect((await anon.request.get(`${adminUrl}/console/api/approvals`)).status()).toBe(401);
    await anon.close();
  });

  it('sign-in refuses a callback with another state, a code with the wrong PKCE verifier, and a foreign redirect_uri', async () => {
    const ctx = await browser.newContext();
    try {
      const login = await ctx.request.get(`${adminUrl}/console/login`, { maxRedirects: 0 });
      const authorize = new URL(login.headers().location ?? '');
      const params = Object.fromEntries(authorize.searchParams);
      const consent = await ctx.request.post(`${adminUrl}/dev-issuer/authorize`, { form: { ...params, login_as: 'alice' }, maxRedirects: 0 });
      const callback = new URL(consent.headers().location ?? '');
      const code = callback.searchParams.get('code') ?? '';
      // The code exchanged with a verifier that is not the one behind the challenge.
      const token = await ctx.request.post(`${adminUrl}/dev-issuer/token`, { form: { grant_type: 'authorization_code', code, client_id: 'airlock', redirect_uri: params.redirect_uri ?? '', code_verifier: 'x'.repeat(43) } });
      expect(token.status()).toBe(400);
      expect(await token.json()).toMatchObject({ error: 'invalid_grant' });
      // A callback whose state was not issued to this browser.
      callback.searchParams.set('state', 'forged');
      const back = await ctx.request.get(callback.toString(), { maxRedirects: 0 });
      expect(back.status()).toBe(401);
      expect((await ctx.cookies()).some((c) => c.name === 'airlock_console')).toBe(false);
      // The dev issuer sends codes only back to this console.
      const foreign = await ctx.request.get(`${adminUrl}/dev-issuer/authorize?${new URLSearchParams({ ...params, redirect_uri: 'http://evil.example/console/callback' }).toString()}`);
      expect(foreign.status()).toBe(403);
    } finally {
      await ctx.close();
    }
  });

  it('shows a held DROP TABLE live (no reload); the requester sees no buttons; forged and CSRF-less POSTs get 403; approve lets psql finish', async () => {
    let navigations = 0;
    alice.page.on('framenavigated', () => navigations++);
    const psql = spawnPsql({ port: pgPort, token: tokens.bob ?? '', user: 'bob' }, ['-v', 'ON_ERROR_STOP=1', '-c', 'DROP TABLE victims']);
    let out = '';
    psql.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    psql.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => psql.once('exit', (code) => r(code)));

    const card = alice.page.locator('#pending article.approval').filter({ hasText: 'DROP TABLE victims' });
    await card.waitFor({ timeout: 10_000 });
    expect(navigations).toBe(0);
    const id = (await card.getAttribute('data-id')) ?? '';
    expect(await card.locator('.requester').textContent()).toBe('bob');
    expect(await card.locator('.target').textContent()).toBe('appdb');
    expect(await card.locator('.proto').textContent()).toBe('postgres');
    expect(await card.locator('.rule').textContent()).toContain('drops-need-a-dba');
    expect(await card.locator('pre.stmt').textContent()).toBe('DROP TABLE victims');
    expect(await card.locator('.left').textContent()).toMatch(/left$/);
    await alice.page.screenshot({ path: shot('inbox'), fullPage: true });

    // bob sees his own request, without buttons.
    const own = bob.page.locator('#pending article.approval').filter({ hasText: 'DROP TABLE victims' });
    await own.waitFor({ timeout: 10_000 });
    expect(await own.locator('button').count()).toBe(0);
    expect(await own.locator('.note').textContent()).toContain('Your request');

    const api = `${adminUrl}/console/api/approvals/${id}/approve`;
    // bob forging an approval of his own request, with his own valid CSRF token: refused.
    const forged = await bob.context.request.post(api, { headers: { 'x-csrf-token': (await csrfOf(bob.page)) ?? '', 'content-type': 'application/json' }, data: {} });
    expect(forged.status()).toBe(403);
    // alice without the CSRF token, with a wrong one, and from another origin: refused.
    const csrf = (await csrfOf(alice.page)) ?? '';
    expect((await alice.context.request.post(api, { headers: { 'content-type': 'application/json' }, data: {} })).status()).toBe(403);
    expect((await alice.context.request.post(api, { headers: { 'x-csrf-token': 'x'.repeat(csrf.length), 'content-type': 'application/json' }, data: {} })).status()).toBe(403);
    expect((await alice.context.request.post(api, { headers: { 'x-csrf-token': csrf, origin: 'http://evil.example', 'content-type': 'application/json' }, data: {} })).status()).toBe(403);
    // A cross-site form post carries no CSRF header: refused even with alice's cookie.
    expect((await alice.context.request.post(api, { form: { reason: 'x' } })).status()).toBe(403);
    expect(await tableExists('victims')).toBe(true);

    await card.locator('button.approve').click();
    expect(await exited).toBe(0);
    expect(out).toContain('DROP TABLE');
    expect(await tableExists('victims')).toBe(false);
    await alice.page.locator('#history article.approval.approved').filter({ hasText: 'DROP TABLE victims' }).waitFor({ timeout: 10_000 });
    expect(navigations).toBe(0);
  });

  it('deny with a reason: the client gets 42501 with that reason', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'bob', database: 'appdb', password: tokens.bob });
    await c.connect();
    try {
      const pending = c.query('DROP TABLE keepers').catch((e: unknown) => e);
      const card = alice.page.locator('#pending article.approval').filter({ hasText: 'DROP TABLE keepers' });
      await card.waitFor({ timeout: 10_000 });
      await card.locator('input.reason').fill('not during the release freeze');
      await card.locator('button.deny').click();
      const e = (await pending) as { code?: string; message?: string };
      expect(e.code).toBe('42501');
      expect(e.message).toContain('not during the release freeze');
      expect(await tableExists('keepers')).toBe(true);
    } finally {
      await c.end();
    }
  });

  it('the approver picks a shorter grant_for window than the rule allows: the next connection inside it is let in without a new hold', async () => {
    const psqlAs = (): ReturnType<typeof spawnPsql> => spawnPsql({ port: pgPort, token: tokens.carol ?? '', user: 'carol' }, ['-v', 'ON_ERROR_STOP=1', '-c', 'SELECT 40 + 2 AS answer']);
    const first = psqlAs();
    let out = '';
    first.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
    const card = alice.page.locator('#pending article.approval').filter({ hasText: 'carol' });
    await card.waitFor({ timeout: 10_000 });
    const id = (await card.getAttribute('data-id')) ?? '';
    const select = card.locator('select.grant-for');
    // The rule's 1h is the most on offer; "this time only" too.
    expect(await select.locator('option').allTextContents()).toEqual(['access for 1h 0m (rule\'s window)', 'access for 5m', 'access for 15m', 'access for 30m', 'this time only']);
    // A window longer than the rule's is refused, even with a valid CSRF token.
    const api = `${adminUrl}/console/api/approvals/${id}/approve`;
    const csrf = (await csrfOf(alice.page)) ?? '';
    const tooLong = await alice.context.request.post(api, { headers: { 'x-csrf-token': csrf, 'content-type': 'application/json' }, data: { grant_for: '2h' } });
    expect(tooLong.status()).toBe(403);
    expect(await tooLong.text()).toContain('at most 1h');
    await select.selectOption('15m');
    await card.locator('button.approve').click();
    expect(await exited).toBe(0);
    expect(out).toContain('42');
    await alice.page.locator('#history article.approval.approved').filter({ hasText: 'carol' }).filter({ hasText: 'access for 15m' }).waitFor({ timeout: 10_000 });
    // Within the window: carol connects again and is let in with no new request.
    const pendingBefore = await alice.context.request.get(`${adminUrl}/console/api/approvals`);
    const second = psqlAs();
    const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    const after = (await (await alice.context.request.get(`${adminUrl}/console/api/approvals`)).json()) as { pending: unknown[]; history: Array<{ requester: string; grantForMs?: number }> };
    expect(after.pending).toEqual(((await pendingBefore.json()) as { pending: unknown[] }).pending);
    expect(after.history.filter((h) => h.requester === 'carol')).toEqual([expect.objectContaining({ grantForMs: 15 * 60_000 })]);
  });

  it('an XSS payload in a statement renders as text: no element, no dialog', async () => {
    const payload = `DROP TABLE xss, "<img src=x onerror=alert(1)><script>alert(2)</script>"`;
    const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'bob', database: 'appdb', password: tokens.bob });
    await c.connect();
    try {
      const pending = c.query(payload).catch((e: unknown) => e);
      const card = alice.page.locator('#pending article.approval').filter({ hasText: '<img src=x' });
      await card.waitFor({ timeout: 10_000 });
      expect(await card.locator('pre.stmt').textContent()).toBe(payload);
      expect(await alice.page.locator('main img, main script').count()).toBe(0);
      await card.locator('input.reason').fill('<b>no</b>');
      await card.locator('button.deny').click();
      expect(((await pending) as { code?: string }).code).toBe('42501');
      await alice.page.locator('#history article.approval.denied').filter({ hasText: '<b>no</b>' }).waitFor({ timeout: 10_000 });
      expect(await alice.page.locator('main b:not(.kw)').count()).toBe(0);
      expect(dialogs).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('sessions list and a session page with the SQL transcript, statements as text', async () => {
    const page = alice.page;
    await page.goto(`${adminUrl}/console/sessions?subject=bob&protocol=postgres&verdict=held`);
    const rows = page.locator('table.list tbody tr');
    expect(await rows.count()).toBeGreaterThanOrEqual(2);
    await page.locator('table.list tbody tr', { hasText: 'bob' }).last().locator('a').click();
    await page.locator('main[data-page="session"]').waitFor();
    const statements = await page.locator('table.transcript pre.stmt').allTextContents();
    expect(statements).toContain('DROP TABLE victims');
    await page.screenshot({ path: shot('session'), fullPage: true });
    // Requesters are not auditors: the page refuses them.
    await bob.page.goto(`${adminUrl}/console/sessions`);
    expect(await bob.page.locator('.error').getAttribute('data-code')).toBe('AIRLOCK_FORBIDDEN');
    expect(dialogs).toEqual([]);
  });

  it.skipIf(!sshOk)('replays a recorded SSH shell in asciinema-player: play, pause, seek', async () => {
    const r = await runTyped('sshpass', ['-e', 'ssh', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-tt', '-p', String(sshPort), `${sshd?.user ?? ''}@127.0.0.1`], {
      env: { SSHPASS: tokens.bob ?? '' },
      lines: ['echo replay-$((40+2))', 'sleep 1', 'echo second-line', 'exit'],
      timeoutMs: 30_000,
    });
    expect(r.stdout).toContain('replay-42');
    const page = alice.page;
    await page.goto(`${adminUrl}/console/sessions?protocol=ssh`);
    await page.locator('table.list tbody tr').first().locator('a').click();
    const player = page.locator('#player .ap-player');
    await player.waitFor({ timeout: 10_000 });
    // The player's own API (asciinema-player 3: play/pause/seek/getCurrentTime/getDuration).
    const call = (expr: string): Promise<unknown> => page.evaluate(`(async () => { const p = globalThis.airlockPlayer; return ${expr}; })()`);
    await call('p.play()');
    await until(page, 'Promise.resolve(globalThis.airlockPlayer.getCurrentTime()).then((t) => t > 0)');
    await call('p.pause()');
    const duration = Number(await call('p.getDuration()'));
    expect(duration).toBeGreaterThan(0);
    await call(`p.seek(${duration})`);
    await until(page, "(document.querySelector('#player')?.textContent ?? '').includes('second-line')");
    expect(await page.locator('#player').textContent()).toContain('replay-42');
    await page.screenshot({ path: shot('replay'), fullPage: true });
    // The recording served to the player carries output only, never keystrokes.
    const cast = await alice.context.request.get(`${adminUrl}${(await page.locator('#player').getAttribute('data-cast')) ?? ''}`);
    expect((await cast.text()).split('\n').slice(1).some((l) => /^\[[^,]*,\s*"i"/.test(l))).toBe(false);
  });

  it('audit chain status: verify now runs the same check as airlock audit verify', async () => {
    const page = alice.page;
    await page.goto(`${adminUrl}/console/audit`);
    await page.locator('#verify-now').click();
    await page.locator('#verify-result[data-state="ok"]').waitFor({ timeout: 20_000 });
    expect(await page.locator('#verify-result').textContent()).toMatch(/intact: \d+ events/);
    await page.screenshot({ path: shot('audit'), fullPage: true });
    // CSRF-less verify is refused too.
    expect((await alice.context.request.post(`${adminUrl}/console/api/audit/verify`)).status()).toBe(403);
  });

  it('sign-out ends the session: the API answers 401 afterwards', async () => {
    await bob.page.goto(`${adminUrl}/console`);
    await bob.page.locator('header form button').click();
    await bob.page.waitForURL(`${adminUrl}/console/signed-out`);
    expect((await bob.context.request.get(`${adminUrl}/console/api/approvals`)).status()).toBe(401);
    expect((await alice.context.request.get(`${adminUrl}/console/api/approvals`)).status()).toBe(200);
  });

  it('after a restart: decided history is still there (embedded store), and verify now shows the signed checkpoint the stop left', async () => {
    expect(await airlock.stop()).toBe(0);
    earlierOutput = airlock.output();
    airlock = await startAirlock(daemonConfig);
    await airlock.waitForLog((l) => l.msg === 'admin API started');
    // The console's own sessions are in memory: alice signs in again.
    await alice.context.close();
    alice = await signIn('alice');
    const history = alice.page.locator('#history article.approval');
    await history.filter({ hasText: 'DROP TABLE victims' }).filter({ hasText: 'approved by alice' }).waitFor({ timeout: 10_000 });
    expect(await history.filter({ hasText: 'DROP TABLE keepers' }).locator('.outcome').textContent()).toBe('denied by alice — not during the release freeze');
    expect(await history.filter({ hasText: 'carol' }).locator('.outcome').textContent()).toContain('access for 15m');

    await alice.page.goto(`${adminUrl}/console/audit`);
    expect(await alice.page.locator('#checkpoints').textContent()).toBe('');
    await alice.page.locator('#verify-now').click();
    await alice.page.locator('#verify-result[data-state="ok"]').waitFor({ timeout: 20_000 });
    const rows = alice.page.locator('table.checkpoints tbody tr');
    expect(await rows.count()).toBe(1);
    const cells = await rows.first().locator('td').allTextContents();
    const node = cells[0] ?? '';
    expect(node).not.toBe('');
    expect(Number(cells[3])).toBe(Number(cells[1]) - 1);
    await alice.page.screenshot({ path: shot('audit'), fullPage: true });
    // The page itself, reloaded, shows the same table server-rendered.
    await alice.page.reload();
    expect(await alice.page.locator('table.checkpoints tbody tr td').first().textContent()).toBe(node);
  });

  it('no script error on any page, and no configured secret or token in anything the daemon printed', () => {
    expect(pageErrors).toEqual([]);
    for (const out of [earlierOutput, airlock.output()]) {
      expect(out).not.toContain('console-pw');
      expect(out).not.toContain(tokens.bob ?? 'unset');
      expect(out).not.toContain(tokens.carol ?? 'unset');
    }
  });
});
