/** Commands that talk to a running daemon's admin API or read its state dir. */
import type { Command } from 'commander';
import { adminRequest, type AdminOptions } from './admin-client.js';

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
    withAdmin(approvals.command(`${verdict} <id>`).description(`${verdict} a held request`))
      .option('--reason <text>', 'why (shown to the requester)')
      .action(async (id: string, opts: AdminOptions & { reason?: string }) => {
        await adminRequest(opts, 'POST', `/v1/approvals/${encodeURIComponent(id)}/${verdict}`, opts.reason === undefined ? {} : { reason: opts.reason });
        process.stdout.write(`${verdict === 'approve' ? 'approved' : 'denied'} ${id}\n`);
      });
  }
}
