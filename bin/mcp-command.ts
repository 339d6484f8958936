/**
 * `airlock mcp`: an MCP server on stdio for AI agents. Its token comes from the
 * environment the agent's MCP config sets (AIRLOCK_TOKEN) or a file, never from a tool
 * argument. stdout carries the protocol, so logs go to stderr.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { loadConfigFile } from '../app/config.js';
import { parseDuration } from '../src/util/duration.js';
import { AirlockError } from '../src/util/errors.js';
import { createLogger } from '../src/util/log.js';
import { RemoteAirlockApi, tokenFromEnvironment } from '../src/mcp/remote-api.js';
import { createMcpServer } from '../src/mcp/server.js';
import { mcpBackends } from '../app/adapters.js';
import { pino } from 'pino';

interface McpOptions {
  admin?: string;
  config?: string;
  connections?: string;
  tokenFile?: string;
  holdTimeout: string;
  maxRows: string;
  maxBytes: string;
  ca?: string;
  logLevel: string;
}

export const MCP_VERSION = '0.1.0';

function adminUrl(opts: McpOptions): URL {
  const given = opts.admin ?? process.env.AIRLOCK_ADMIN_URL;
  if (given !== undefined) return new URL(given);
  const file = opts.config ?? process.env.AIRLOCK_CONFIG;
  if (file === undefined) throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'pass --admin URL (or AIRLOCK_ADMIN_URL), or --config FILE on the gateway host');
  const config = loadConfigFile(file);
  const listen = config.admin.listen;
  if (listen === undefined) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `${file} has no admin.listen`);
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host;
  return new URL(`${config.admin.tls === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${listen.port}`);
}

function bytes(text: string): number {
  const m = /^(\d+)\s*(k|kb|m|mb)?$/i.exec(text.trim());
  if (m === null) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `--max-bytes: expected a size such as 256k or 1m, got "${text}"`);
  const unit = (m[2] ?? '').toLowerCase();
  return Number(m[1]) * (unit.startsWith('m') ? 1024 * 1024 : unit.startsWith('k') ? 1024 : 1);
}

export function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description('MCP server on stdio: database, shell and API tools for AI agents, through airlock, as the agent (token from AIRLOCK_TOKEN)')
    .option('--admin <url>', 'the airlock admin API (or AIRLOCK_ADMIN_URL)')
    .option('--config <file>', 'on the gateway host: find the admin API from this config')
    .option('--connections <names>', 'offer only these connections (comma-separated)')
    .option('--token-file <file>', 'read the token from this file instead of AIRLOCK_TOKEN')
    .option('--hold-timeout <duration>', 'longest a tool waits for an approval', '10m')
    .option('--max-rows <n>', 'default row cap of the query tool', '200')
    .option('--max-bytes <size>', 'cap on what one tool call returns', '256k')
    .option('--ca <file>', 'CA certificate (PEM) for listeners with TLS')
    .option('--log-level <level>', 'stderr log level', 'warn')
    .action(async (opts: McpOptions) => {
      const logger = createLogger(opts.logLevel, pino.destination(2));
      const holdTimeoutMs = parseDuration(opts.holdTimeout);
      if (holdTimeoutMs === null) throw new AirlockError('AIRLOCK_CONFIG_INVALID', '--hold-timeout: expected a duration such as 90s or 10m');
      const readToken = tokenFromEnvironment(opts.tokenFile);
      readToken(); // fail at start, not at the first tool call, when no token is set
      const api = new RemoteAirlockApi({ adminUrl: adminUrl(opts), readToken });
      const server = createMcpServer({
        api,
        ...(opts.connections === undefined ? {} : { only: opts.connections.split(',').map((s) => s.trim()).filter((s) => s !== '') }),
        limits: { maxRows: Number(opts.maxRows), maxBytes: bytes(opts.maxBytes), holdTimeoutMs },
        backends: mcpBackends,
        ...(opts.ca === undefined ? {} : { ca: readFileSync(opts.ca, 'utf8') }),
        version: MCP_VERSION,
      });
      await server.connect(new StdioServerTransport());
      logger.info({ admin: adminUrl(opts).origin }, 'airlock mcp serving on stdio');
    });
}
