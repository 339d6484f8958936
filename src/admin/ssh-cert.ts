/**
 * POST /v1/ssh/cert: a caller's public key signed by airlock's SSH user CA, for a short TTL
 * (bounded by ssh_ca.max_ttl and by the caller's token). Then plain `ssh` authenticates to
 * airlock's SSH listeners with it.
 */
import type { AdminRoute } from './server.js';
import { readJsonBody, sendJson } from './http.js';
import { AirlockError } from '../util/errors.js';
import type { SshCa } from '../auth/ssh-ca.js';
import type { Config } from '../config/index.js';

export function sshCertRoutes(ca: () => Promise<SshCa>, config: () => Config): AdminRoute[] {
  return [
    {
      method: 'POST',
      pattern: /^\/v1\/ssh\/cert$/,
      handler: async ({ req, res, caller }) => {
        const identity = await caller();
        const body = (await readJsonBody(req)) as { public_key?: unknown; ttl_seconds?: unknown };
        if (typeof body.public_key !== 'string') throw new AirlockError('AIRLOCK_PROTOCOL', 'public_key is required (an OpenSSH public key line)');
        const ttl = typeof body.ttl_seconds === 'number' && body.ttl_seconds > 0 ? body.ttl_seconds * 1000 : config().ssh_ca.default_ttl;
        const issued = (await ca()).issue(identity, body.public_key, ttl);
        sendJson(res, 200, { certificate: issued.certificate, key_id: issued.keyId, valid_until: issued.validUntil.toISOString() });
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/ssh\/ca$/,
      handler: async ({ res }) => sendJson(res, 200, { public_key: (await ca()).publicKeyLine() }),
    },
  ];
}
