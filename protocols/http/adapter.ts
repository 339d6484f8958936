/** The http protocol as the daemon sees it (src/core/adapter.ts; listed in app/adapters.ts). */
import { wrongProtocol, type Listener, type ProtocolAdapter } from '../../src/core/adapter.js';
import type { ProtocolEvents } from '../../src/core/session-types.js';
import { httpConnection } from './config.js';
import { HttpListener } from './listener.js';
import { httpRequest } from './mcp.js';
import { StaticLeases } from '../../src/credentials/lease.js';
import { ComputedLeases } from '../../src/credentials/brokers.js';
import { Secret } from '../../src/secrets/index.js';

declare module '../../src/core/session-types.js' {
  interface ProtocolEvents {
    /** One HTTP request and its answer: headers with credentials redacted, bodies capped and masked. */
    'http.exchange': { requestId: string; method: string; path: string; status: number; durationMs: number };
    /** One WebSocket frame relayed (text capped and masked, binary as its length), and the WebSocket's end. */
    'websocket.frame': { requestId: string };
    'websocket.closed': { requestId: string };
  }
}

export const httpAdapter = {
  protocol: 'http',
  connectionSchema: httpConnection,
  createListener: (core, config, context) => (config.protocol === 'http' ? (new HttpListener(core, config, context) as Listener) : wrongProtocol('http', config)),
  eventKinds: ['http.exchange', 'websocket.frame', 'websocket.closed'] satisfies Array<keyof ProtocolEvents>,
  mcp: { request: httpRequest },
  describe: (c) => (c.protocol === 'http' ? { auth_header: c.auth_header } : wrongProtocol('http', c)),
  leaseBroker: (c, deps) => {
    if (c.protocol !== 'http') return wrongProtocol('http', c);
    const cred = c.credentials;
    switch (cred.type) {
      case 'none':
        return new ComputedLeases(async () => ({ id: 'none', username: '', secret: new Secret(''), expiresAt: null }));
      case 'header':
        return new StaticLeases(deps.resolver, cred.name, cred.value);
      case 'jwt':
        return new ComputedLeases(async (r) => {
          const token = await deps.signJwt({ identity: r.identity, sessionId: r.sessionId, audience: cred.audience, ttlMs: cred.ttl });
          return { id: `jwt-${r.sessionId}`, username: cred.header, secret: new Secret(`Bearer ${token}`), expiresAt: Date.now() + cred.ttl };
        });
    }
  },
} satisfies ProtocolAdapter<'http'>;
