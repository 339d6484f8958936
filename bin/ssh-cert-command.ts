/**
 * `airlock ssh-cert`: asks the admin API (POST /v1/ssh/cert) to sign your own SSH public key
 * with airlock's user CA; prints the certificate (one OpenSSH line) or writes it with --out,
 * so plain `ssh -o CertificateFile=…` authenticates to airlock's SSH listeners.
 */
import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../src/util/duration.js';
import { AirlockError } from '../src/util/errors.js';
import { adminRequest } from './admin-client.js';

export function registerSshCertCommand(program: Command): void {
  program
    .command('ssh-cert')
    .description('sign your SSH public key with airlock\'s user CA (POST /v1/ssh/cert)')
    .option('--admin <url>', 'admin API URL (or AIRLOCK_ADMIN_URL)')
    .option('--token <token>', 'your token (or AIRLOCK_TOKEN)')
    .option('--key <file>', 'the public key to sign', join(homedir(), '.ssh', 'id_ed25519.pub'))
    .option('--out <file>', 'write the certificate here (e.g. ~/.ssh/id_ed25519-cert.pub) instead of printing it')
    .option('--ttl <duration>', 'requested lifetime (bounded by ssh_ca.max_ttl and your token)')
    .action(async (opts: { admin?: string; token?: string; key: string; out?: string; ttl?: string }) => {
      let publicKey: string;
      try {
        publicKey = readFileSync(opts.key, 'utf8').trim();
      } catch {
        throw new AirlockError('AIRLOCK_CONFIG_INVALID', `cannot read the public key ${opts.key}`);
      }
      const ttl = opts.ttl === undefined ? undefined : parseDuration(opts.ttl);
      if (ttl === null) throw new AirlockError('AIRLOCK_CONFIG_INVALID', '--ttl: expected a duration such as 15m or 8h');
      const body = await adminRequest<{ certificate: string; valid_until: string }>(opts, 'POST', '/v1/ssh/cert', { public_key: publicKey, ...(ttl === undefined ? {} : { ttl_seconds: Math.floor(ttl / 1000) }) });
      if (opts.out !== undefined) {
        writeFileSync(opts.out, `${body.certificate}\n`, { mode: 0o644 });
        process.stderr.write(`airlock: certificate valid until ${body.valid_until} written to ${opts.out}\n`);
      } else process.stdout.write(`${body.certificate}\n`);
    });
}
