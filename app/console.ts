/**
 * The web console's routes for the admin listener (issue 19): on with auth.dev_issuer (the
 * dev issuer signs people in) or with an admin.console block naming an external issuer.
 */
import { join } from 'node:path';
import type { Config } from '../src/config/index.js';
import type { Logger } from '../src/util/log.js';
import type { Identity } from '../src/core/types.js';
import type { ApprovalBroker } from '../src/approvals/index.js';
import type { SecretResolver } from '../src/secrets/index.js';
import type { AdminRoute } from '../src/admin/server.js';
import { devIssuerKey } from '../src/auth/verifier.js';
import { consoleRoutes, devIssuerRoutes, type ConsoleFleet, type ConsoleSignIn } from '../src/admin/console/index.js';

export async function consoleRoutesFor(opts: {
  config: Config;
  logger: Logger;
  authenticate(token: string): Promise<Identity>;
  broker: ApprovalBroker;
  /** With the PostgreSQL state store: approvals across nodes. */
  fleet: ConsoleFleet | null;
  exporters(): unknown[];
  /** This admin listener's own address, e.g. http://127.0.0.1:9090 */
  selfUrl(): string;
  secrets: SecretResolver;
}): Promise<AdminRoute[]> {
  const { config } = opts;
  const c = config.admin.console;
  let signIn: ConsoleSignIn;
  const routes: AdminRoute[] = [];
  if (c !== undefined) {
    const secret = c.client_secret === undefined ? undefined : (await opts.secrets.resolve(c.client_secret)).reveal();
    signIn = { kind: 'oidc', issuer: c.issuer, clientId: c.client_id, publicUrl: c.public_url, ...(secret === undefined ? {} : { clientSecret: secret }) };
  } else if (config.auth.dev_issuer) {
    signIn = { kind: 'dev', selfUrl: opts.selfUrl };
  } else {
    return [];
  }
  if (config.auth.dev_issuer) routes.push(...devIssuerRoutes(() => devIssuerKey(config, opts.secrets)));
  routes.push(
    ...consoleRoutes({
      logger: opts.logger,
      signIn,
      authenticate: opts.authenticate,
      broker: opts.broker,
      ...(opts.fleet === null ? {} : { fleet: opts.fleet }),
      audit: {
        dir: join(config.state_dir, 'audit'),
        stateDir: config.state_dir,
        isAuditor: (who) => who.groups.some((g) => config.audit.auditors.includes(g)),
        exporters: opts.exporters,
      },
    }),
  );
  return routes;
}
