/** Commands that talk to a running daemon's admin API or read its state dir. */
import type { Command } from 'commander';
import { readCast } from '../src/audit/recordings.js';
import { join } from 'node:path';
import { adminRequest, type AdminOptions } from './admin-client.js';
import { loadConfigFile } from '../app/config.js';
import { parseDuration } from '../src/util/duration.js';
import { AirlockError } from '../src/util/errors.js';
import { hostname } from 'node:os';
import { SecretResolver } from '../src/secrets/index.js';
import { PostgresStateStore } from '../src/state/index.js';
import { createLogger } from '../src/util/log.js';
import { verifyFleet } from '../src/audit/fleet-verify.js';
import { pinnedKeys, type CheckpointKeys } from '../src/audit/verify-keys.js';
import { generateCheckpointKey, publicKeyPath } from '../src/audit/signing.js';
import { writeFileSync } from 'node:fs';
import {
  auditVerifyCommand,
  listSessions,
  renderSessionList,
  renderTranscript,
  replayTranscript,
  sessionTranscript,
} from '../src/audit/index.js';

/** `audit verify --fleet`: the checkpoints every node published to the config's state store, each node's log checked against its last. */
async function fleetVerify(opts: { config?: string; nodeDir: string[] }, keys: CheckpointKeys | undefined): Promise<{ exitCode: 0 | 1; text: string }> {
  const file = opts.config ?? process.env.AIRLOCK_CONFIG;
  if (file === undefined) throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'no config: pass --config FILE or set AIRLOCK_CONFIG');
  const config = loadConfigFile(file);
  if (config.state.backend !== 'postgres') throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'audit verify --fleet reads the shared state store: the config needs state.backend: postgres');
  const dirs = new Map<string, string>();
  for (const d of opts.nodeDir) {
    const at = d.indexOf('=');
    if (at <= 0 || at === d.length - 1) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `--node-dir ${d}: expected NODE=PATH`);
    dirs.set(d.slice(0, at), d.slice(at + 1));
  }
  const url = (await new SecretResolver().resolve(config.state.url)).reveal();
  const store = await PostgresStateStore.open({ url, node: `verify ${hostname()}:${process.pid}`, logger: createLogger('silent'), pollIntervalMs: 60_000 });
  try {
    const nodes = (await store.lastCheckpoints()).map((n) => ({ node: n.checkpoint.node, auditDir: n.auditDir, checkpoint: n.checkpoint }));
    return await verifyFleet(nodes, dirs, keys);
  } finally {
    await store.close();
  }
}

function auditDir(opts: { config?: string }): string {
  const file = opts.config ?? process.env.AIRLOCK_CONFIG;
  if (file === undefined) {
    process.stderr.write('airlock: no config: pass --config FILE or set AIRLOCK_CONFIG\n');
    process.exit(2);
  }
  return join(loadConfigFile(file).state_dir, 'audit');
}

interface ApprovalView {
  id: string;
  status: string;
  requester: { subject: string };
  connection: string;
  summary: string;
  rule: string;
  createdAt: number;
  expiresAt: number;
}

/** A session as GET /v1/sessions shows it (`node` with a shared state store; counts null for another node's). */
interface FleetSessionView {
  session: string;
  node?: string;
  subject: string | null;
  connection: string | null;
  client: string | null;
  startedAt: string;
  endedAt: string | null;
  endReason: string | null;
  actions: number | null;
  denied: number | null;
  held: number | null;
}

function renderFleetSessions(list: FleetSessionView[]): string {
  const header = ['SESSION', 'NODE', 'STARTED', 'ENDED', 'SUBJECT', 'CONNECTION', 'CLIENT', 'ACT/DENY/HOLD', 'END'];
  const n = (v: number | null): string => (v === null ? '-' : String(v));
  const rows = list.map((s) => [s.session, s.node ?? 'this', s.startedAt, s.endedAt ?? 'active', s.subject ?? '?', s.connection ?? '?', s.client ?? '?', `${n(s.actions)}/${n(s.denied)}/${n(s.held)}`, s.endReason ?? '']);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
}

/** A node as GET /v1/nodes shows it. */
interface NodeView {
  node: string;
  startedAt: string;
  lastSeen: string;
  adminUrl: string | null;
  version: string;
  live: boolean;
  openSessions: number;
  self: boolean;
}

function renderNodes(list: NodeView[]): string {
  const header = ['NODE', 'STATE', 'LAST SEEN', 'STARTED', 'OPEN', 'VERSION', 'ADMIN'];
  const rows = list.map((n) => [`${n.node}${n.self ? ' (this)' : ''}`, n.live ? 'live' : 'lost', n.lastSeen, n.startedAt, String(n.openSessions), n.version, n.adminUrl ?? '-']);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
}

function withAdmin(cmd: Command): Command {
  return cmd.option('--admin <url>', 'admin API URL (or AIRLOCK_ADMIN_URL)').option('--token <token>', 'your token (or AIRLOCK_TOKEN)');
}

export function registerAdminCommands(program: Command): void {
  const approvals = program.command('approvals').description('held statements, commands and requests');
  withAdmin(approvals.command('list').description('pending approvals you may decide'))
    .option('--json', 'print JSON')
    .action(async (opts: AdminOptions & { json?: boolean }) => {
      const body = await adminRequest<{ approvals: ApprovalView[] }>(opts, 'GET', '/v1/approvals');
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(body.approvals, null, 2)}\n`);
        return;
      }
      if (body.approvals.length === 0) process.stdout.write('no pending approvals\n');
      for (const a of body.approvals) {
        const left = Math.max(0, Math.round((a.expiresAt - Date.now()) / 1000));
        process.stdout.write(`${a.id}  ${a.status}  ${a.requester.subject}@${a.connection}  rule=${a.rule}  expires in ${left}s\n    ${a.summary.replace(/\s+/g, ' ').slice(0, 200)}\n`);
      }
    });
  for (const verdict of ['approve', 'deny'] as const) {
    const cmd = withAdmin(approvals.command(`${verdict} <id>`).description(`${verdict} a held request`)).option('--reason <text>', 'why (shown to the requester)');
    if (verdict === 'approve') cmd.option('--grant-for <duration>', "a connect approval's grant_for window: shorter than the rule's (e.g. 15m), or none");
    cmd.action(async (id: string, opts: AdminOptions & { reason?: string; grantFor?: string }) => {
      await adminRequest(opts, 'POST', `/v1/approvals/${encodeURIComponent(id)}/${verdict}`, {
        ...(opts.reason === undefined ? {} : { reason: opts.reason }),
        ...(opts.grantFor === undefined ? {} : { grant_for: opts.grantFor }),
      });
      process.stdout.write(`${verdict === 'approve' ? 'approved' : 'denied'} ${id}\n`);
    });
  }

  const nodes = program.command('nodes').description('the nodes of a fleet sharing the PostgreSQL state store');
  withAdmin(nodes.command('list'))
    .description('every node that ever beat: live (seen within state.lease_timeout) or lost, its open sessions (auditors only)')
    .option('--json', 'print JSON')
    .action(async (opts: AdminOptions & { json?: boolean }) => {
      const body = await adminRequest<{ nodes: NodeView[] }>(opts, 'GET', '/v1/nodes');
      process.stdout.write(opts.json ? `${JSON.stringify(body.nodes, null, 2)}\n` : renderNodes(body.nodes));
    });

  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('walk the hash chain; prints ok and the count, or the first broken link (exit 1); --fleet: every node of the shared state store against its last published checkpoint, one line per node')
    .option('--config <file>', 'config file (or AIRLOCK_CONFIG)')
    .option('--fleet', "every node's log against the checkpoints in the shared state store (state.backend: postgres)")
    .option('--node-dir <node=path>', "with --fleet: read this node's audit log from PATH instead of the directory it recorded (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option(
      '--public-key <file>',
      'check every checkpoint against this pinned public key (SPKI PEM; repeatable, or several in one file, for a key rotation) instead of the audit-signing.pub beside the log: proves who wrote the log, not only that it is consistent',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .action(async (opts: { config?: string; fleet?: boolean; nodeDir: string[]; publicKey: string[] }) => {
      const keys = opts.publicKey.length === 0 ? undefined : await pinnedKeys(opts.publicKey);
      const r = opts.fleet === true ? await fleetVerify(opts, keys) : await auditVerifyCommand(auditDir(opts), keys === undefined ? {} : { keys });
      process.stdout.write(r.text);
      process.exitCode = r.exitCode;
    });
  audit
    .command('keygen')
    .description('make an Ed25519 checkpoint key for audit.signing_key: the private key (PKCS#8 PEM, mode 0600) into FILE, its public half beside it (.pub) for audit verify --public-key')
    .requiredOption('--out <file>', 'where to write the private key (never overwritten); the public key goes to FILE without .key, plus .pub')
    .action((opts: { out: string }) => {
      const key = generateCheckpointKey();
      const pub = publicKeyPath(opts.out);
      try {
        writeFileSync(opts.out, key.privatePem, { mode: 0o600, flag: 'wx' });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new AirlockError('AIRLOCK_CONFIG_INVALID', code === 'EEXIST' ? `${opts.out} exists; airlock never overwrites a key` : `cannot write ${opts.out} (${code ?? 'error'})`);
      }
      writeFileSync(pub, key.publicPem, { mode: 0o644 });
      process.stdout.write(`wrote ${opts.out} (private, 0600) and ${pub} (public); key id ${key.keyId}\nconfig:  audit: { signing_key: "\${file:${opts.out}}" }\nverify:  airlock audit verify --public-key ${pub}\n`);
    });

  const sessions = program.command('sessions').description('recorded sessions, from the local state dir (or every node, through the admin API)');
  withAdmin(sessions.command('list'))
    .description('sessions from the local state dir; with --admin (or AIRLOCK_ADMIN_URL and no config) every node\'s, through the admin API')
    .option('--config <file>', 'config file (or AIRLOCK_CONFIG)')
    .option('--since <duration>', 'only sessions started within this time, e.g. 1h')
    .option('--subject <name>', 'only this subject')
    .option('--connection <name>', 'only this connection')
    .option('--json', 'print JSON')
    .action(async (opts: AdminOptions & { config?: string; since?: string; subject?: string; connection?: string; json?: boolean }) => {
      const viaAdmin = opts.admin !== undefined || (opts.config === undefined && process.env.AIRLOCK_CONFIG === undefined && process.env.AIRLOCK_ADMIN_URL !== undefined);
      if (viaAdmin) {
        const q = new URLSearchParams();
        for (const k of ['since', 'subject', 'connection'] as const) if (opts[k] !== undefined) q.set(k, opts[k] ?? '');
        const body = await adminRequest<{ sessions: FleetSessionView[] }>(opts, 'GET', `/v1/sessions${q.size === 0 ? '' : `?${q.toString()}`}`);
        process.stdout.write(opts.json ? `${JSON.stringify(body.sessions, null, 2)}\n` : renderFleetSessions(body.sessions));
        return;
      }
      const since = opts.since === undefined ? null : parseDuration(opts.since);
      const list = await listSessions(auditDir(opts), {
        ...(since === null ? {} : { sinceMs: Date.now() - since }),
        ...(opts.subject === undefined ? {} : { subject: opts.subject }),
        ...(opts.connection === undefined ? {} : { connection: opts.connection }),
      });
      process.stdout.write(opts.json ? `${JSON.stringify(list, null, 2)}\n` : renderSessionList(list));
    });
  withAdmin(sessions.command('kill <id>'))
    .description('end a session on whichever node holds it (admins only); returns once that node has ended it')
    .option('--reason <text>', 'why (recorded in the audit log)')
    .option('--timeout <duration>', 'how long to wait for the holding node to confirm', '10s')
    .action(async (id: string, opts: AdminOptions & { reason?: string; timeout: string }) => {
      const timeout = parseDuration(opts.timeout);
      if (timeout === null || timeout <= 0) throw new AirlockError('AIRLOCK_CONFIG_INVALID', '--timeout: expected a duration such as 10s');
      const body = await adminRequest<{ killed: { session: string; node: string; endReason: string } }>(opts, 'POST', `/v1/sessions/${encodeURIComponent(id)}/kill`, {
        timeout_seconds: timeout / 1000,
        ...(opts.reason === undefined ? {} : { reason: opts.reason }),
      });
      process.stdout.write(`killed ${body.killed.session} on node ${body.killed.node} (${body.killed.endReason})\n`);
    });
  sessions
    .command('show <id>')
    .description('the ordered transcript of one session')
    .option('--config <file>', 'config file (or AIRLOCK_CONFIG)')
    .action(async (id: string, opts: { config?: string }) => {
      const records = await sessionTranscript(auditDir(opts), id);
      if (records.length === 0) {
        process.stderr.write(`airlock: no session ${id}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(renderTranscript(records));
    });
  sessions
    .command('replay <id>')
    .description('the transcript paced as it happened')
    .option('--config <file>', 'config file (or AIRLOCK_CONFIG)')
    .option('--speed <n>', 'play faster (10 = ten times)', '1')
    .action(async (id: string, opts: { config?: string; speed: string }) => {
      // An SSH shell's recording plays as the terminal showed it.
      const cast = readCast(join(auditDir(opts), '..', 'recordings', `${id}.cast`));
      if (cast !== null) {
        const speed = Number(opts.speed) || 1;
        let prev = 0;
        for (const e of cast.events) {
          if (e.kind !== 'o') continue;
          const gap = Math.min(Math.max(0, e.at - prev), 5) / speed;
          prev = e.at;
          if (gap > 0) await new Promise((r) => setTimeout(r, gap * 1000));
          process.stdout.write(e.data);
        }
        return;
      }
      const records = await sessionTranscript(auditDir(opts), id);
      if (records.length === 0) {
        process.stderr.write(`airlock: no session ${id}\n`);
        process.exitCode = 1;
        return;
      }
      await replayTranscript(records, { speed: Number(opts.speed) || 1, idleLimitMs: 5_000, write: (t: string) => void process.stdout.write(t) });
    });
}
