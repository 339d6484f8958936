export { consoleRoutes, approvalView, type ConsoleDeps, type ConsoleFleet } from './routes.js';
export { devIssuerRoutes, DEV_USERS } from './dev-issuer.js';
export type { ConsoleSignIn } from './oidc.js';
export { CONTENT_SECURITY_POLICY } from './html.js';
