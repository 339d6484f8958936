/**
 * scp through airlock vs direct to the same sshd, in the same run (issue 8): a file of
 * --mb megabytes (default 1024) uploaded and downloaded; MB/s and the ratio. Needs root
 * (the harness sshd runs a test login).
 *   npx tsx bench/ssh-scp.ts [--mb 1024]
 */
import { mkdtempSync, writeFileSync, rmSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { spawn } from 'node:child_process';
import { startSshd, sshdAvailable } from '../test/harness/sshd.js';
import { freePort } from '../test/harness/ports.js';
import { run } from '../test/harness/clients.js';
import { mintDevToken } from '../src/auth/verifier.js';
import { validateConfig } from '../app/config.js';
import { table } from './lib.js';

if (!sshdAvailable()) {
  console.log('ssh-scp: skipped (needs root and /usr/sbin/sshd)');
  process.exit(0);
}
const i = process.argv.indexOf('--mb');
const mb = i >= 0 ? Number(process.argv[i + 1]) || 1024 : 1024;
const sshd = await startSshd();
const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-scp-'));
const file = join(dir, 'payload.bin');
const fd = openSync(file, 'w');
const chunk = randomBytes(1024 * 1024);
for (let n = 0; n < mb; n++) writeSync(fd, chunk);
closeSync(fd);

const port = await freePort();
const stateDir = join(dir, 'state');
const configFile = join(dir, 'airlock.yaml');
writeFileSync(configFile, stringify({
  state_dir: stateDir,
  log: { level: 'warn' },
  auth: { dev_issuer: true },
  connections: [{
    name: 'bench', protocol: 'ssh', listen: `127.0.0.1:${port}`,
    upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
    credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}` },
    allow_groups: ['dba'], allowed_logins: { dba: [sshd.user] },
  }],
}));
const daemon = spawn(process.execPath, [...(process.env.PROFILE_DIR === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', process.env.PROFILE_DIR]), join(import.meta.dirname, '..', 'dist/bin/airlock.js'), 'serve', '--config', configFile], { stdio: 'inherit' });
await new Promise((r) => setTimeout(r, 1500));
const parsed = validateConfig({ state_dir: stateDir, auth: { dev_issuer: true } });
if (!parsed.ok) throw new Error('config');
const token = await mintDevToken(parsed.config, 'bench', ['dba'], 'machine', 3_600_000);

const opts = ['-q', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'];
async function timed(args: string[], env: Record<string, string> = {}): Promise<number> {
  const t = Date.now();
  const r = await run(args[0] ?? '', args.slice(1), { env, timeoutMs: 1_800_000 });
  if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return (Date.now() - t) / 1000;
}
const remote = `/tmp/airlock-bench-${Date.now()}.bin`;
const back = join(dir, 'back.bin');
const direct = ['scp', ...opts, '-i', sshd.userKeyFile, '-o', 'IdentitiesOnly=yes', '-P', String(sshd.port)];
const via = ['sshpass', '-e', 'scp', ...opts, '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-P', String(port)];
const target = `${sshd.user}@127.0.0.1`;
const dUp = await timed([...direct, file, `${target}:${remote}`]);
const dDown = await timed([...direct, `${target}:${remote}`, back]);
const aUp = await timed([...via, file, `${target}:${remote}`], { SSHPASS: token });
const aDown = await timed([...via, `${target}:${remote}`, back], { SSHPASS: token });
const rate = (s: number): string => (mb / s).toFixed(0);
console.log(`\n## scp of ${mb} MB (${new Date().toISOString().slice(0, 10)}, 2 cores)`);
console.log(table([
  ['direction', 'direct MB/s', 'airlock MB/s', 'airlock/direct'],
  ['upload', rate(dUp), rate(aUp), (dUp / aUp).toFixed(2)],
  ['download', rate(dDown), rate(aDown), (dDown / aDown).toFixed(2)],
]));
daemon.kill('SIGTERM');
await sshd.stop();
rmSync(remote, { force: true });
rmSync(dir, { recursive: true, force: true });
