#!/usr/bin/env node
/**
 * The airlock CLI. Subcommand names and flags are the public interface.
 */
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { AirlockError } from '../src/util/errors.js';
import { loadConfigFile, parseConfigText } from '../app/config.js';
import { parseDuration } from '../src/util/duration.js';
import { mintDevToken } from '../src/auth/verifier.js';
import type { IdentityKind } from '../src/core/types.js';
import { fleetWarnings } from '../src/state/fleet-check.js';

const program = new Command();
program.name('airlock').description('wire-level access gateway').showHelpAfterError();

function configFile(opts: { config?: string }): string {
  const file = opts.config ?? process.env.AIRLOCK_CONFIG;
  if (file === undefined) fail('no config: pass --config FILE or set AIRLOCK_CONFIG', 2);
  return file;
}

function fail(message: string, code = 1): never {
  process.stderr.write(`airlock: ${message}\n`);
  process.exit(code);
}

function failWith(e: unknown, code = 1): never {
  if (e instanceof AirlockError) fail(e.message, code);
  fail(e instanceof Error ? e.message : String(e), code);
}

program
  .command('serve')
  .description('run the daemon')
  .option('--config <file>', 'config file (or AIRLOCK_CONFIG)')
  .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']))
  .action(async (opts: { config?: string; logLevel?: string }) => {
    const { Daemon } = await import('../app/daemon.js');
    let daemon;
    try {
      daemon = await Daemon.fromFile(configFile(opts), opts.logLevel);
      await daemon.start();
    } catch (e) {
      failWith(e, 2);
    }
    const d = daemon;
    process.on('SIGHUP', () => void d.reload());
    const stop = (): void => {
      void d.stop().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });

const config = program.command('config').description('configuration tools');
config
  .command('check')
  .description('validate a config file; prints ok or each problem with its path')
  .option('--config <file>', 'config file (or AIRLOCK_CONFIG)')
  .action((opts: { config?: string }) => {
    const file = configFile(opts);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      fail(`cannot read ${file}`, 2);
    }
    const result = parseConfigText(text);
    if (result.ok) {
      process.stdout.write('ok\n');
      for (const w of fleetWarnings(result.config)) process.stdout.write(`warning: ${w.path}: ${w.message}\n`);
      return;
    }
    for (const p of result.problems) process.stdout.write(`${p.path}: ${p.message}\n`);
    process.exit(2);
  });

const token = program.command('token').description('tokens');
token
  .command('mint')
  .description('print a token from the dev issuer (auth.dev_issuer must be true)')
  .option('--config <file>', 'config file (or AIRLOCK_CONFIG)')
  .requiredOption('--sub <name>', 'subject')
  .option('--groups <a,b>', 'comma-separated groups', '')
  .option('--ttl <duration>', 'lifetime, e.g. 15m', '15m')
  .addOption(new Option('--kind <kind>', 'identity kind').choices(['human', 'machine', 'agent']).default('human'))
  .action(async (opts: { config?: string; sub: string; groups: string; ttl: string; kind: IdentityKind }) => {
    const ttl = parseDuration(opts.ttl);
    if (ttl === null || ttl <= 0) fail('--ttl: expected a duration such as 15m', 2);
    try {
      const cfg = loadConfigFile(configFile(opts));
      const groups = opts.groups.split(',').map((g) => g.trim()).filter((g) => g !== '');
      process.stdout.write(`${await mintDevToken(cfg, opts.sub, groups, opts.kind, ttl)}\n`);
    } catch (e) {
      failWith(e, 2);
    }
  });
token
  .command('exchange')
  .description('exchange an OIDC token for a short airlock token (admin API POST /v1/token)')
  .option('--admin <url>', 'admin API URL (or AIRLOCK_ADMIN_URL)')
  .option('--token <token>', 'the OIDC token (or AIRLOCK_TOKEN)')
  .option('--ttl <duration>', 'requested lifetime', '15m')
  .action(async (opts: { admin?: string; token?: string; ttl: string }) => {
    const { adminRequest } = await import('./admin-client.js');
    const ttl = parseDuration(opts.ttl) ?? 900_000;
    const body = await adminRequest<{ token: string }>(opts, 'POST', '/v1/token', { ttl_seconds: Math.floor(ttl / 1000) });
    process.stdout.write(`${body.token}\n`);
  });

program
  .command('dev')
  .description('start a throwaway PostgreSQL with demo data and airlock in front of it')
  .option('--port <port>', 'airlock postgres port', '15432')
  .option('--admin-port <port>', 'admin API port', '7070')
  .action(async (opts: { port: string; adminPort: string }) => {
    const { runDev } = await import('../app/dev/dev.js');
    try {
      await runDev({ port: Number(opts.port), adminPort: Number(opts.adminPort) });
    } catch (e) {
      failWith(e, 1);
    }
  });

const { registerAdminCommands } = await import('./admin-commands.js');
registerAdminCommands(program);
const { registerMcpCommand } = await import('./mcp-command.js');
registerMcpCommand(program);
const { registerSshCertCommand } = await import('./ssh-cert-command.js');
registerSshCertCommand(program);

program.parseAsync(process.argv).catch((e: unknown) => failWith(e, 1));
