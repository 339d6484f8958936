/**
 * Keys that must be the same on every node of a fleet (a shared PostgreSQL state store):
 * `config check` warns when one would be generated per node into state_dir, or is not a
 * secret reference every node resolves alike.
 */
import type { Config } from '../config/index.js';
import { isSecretReference } from '../secrets/index.js';

export interface FleetWarning {
  path: string;
  message: string;
}

export function fleetWarnings(config: Config): FleetWarning[] {
  if (config.state.backend !== 'postgres') return [];
  const out: FleetWarning[] = [];
  const shared = (path: string, value: string | undefined, what: string): void => {
    if (value === undefined) out.push({ path, message: `not set: each node generates its own ${what} into state_dir; with a shared state store set it to the same secret reference on every node` });
    else if (!isSecretReference(value)) out.push({ path, message: `not a secret reference: ${what} must be the same on every node; use \${file:…} or \${env:…}` });
  };
  shared('ssh_ca.key', config.ssh_ca.key, "SSH user CA (callers' certificates from one node are refused by the others)");
  shared('masking.hash_key', config.masking.hash_key, 'masking hash key (the same value would get a different pseudonym on each node)');
  shared('auth.token_signing_key', config.auth.token_signing_key, 'gateway-token signing key (tokens from POST /v1/token on one node are refused by the others)');
  if (config.audit.enabled) shared('audit.signing_key', config.audit.signing_key, "audit checkpoint key (each node's checkpoints would carry a key of its own: no one pinned public key verifies the fleet; airlock audit keygen makes one)");
  if (config.auth.dev_issuer) shared('auth.dev_issuer_key', config.auth.dev_issuer_key, 'dev issuer key (dev tokens minted for one node are refused by the others)');
  config.connections.forEach((c, i) => {
    if (c.protocol !== 'ssh') return;
    if (c.credentials.type === 'ssh-certificate') shared(`connections[${i}].credentials.ca_key`, c.credentials.ca_key, 'upstream SSH CA key');
    if (c.host_key === undefined) {
      out.push({ path: `connections[${i}].host_key`, message: 'not set: each node generates its own host key, so clients behind a load balancer see it change; set the same key on every node' });
    }
  });
  return out;
}
