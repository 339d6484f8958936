/** The http protocol as the daemon sees it (src/core/adapter.ts; listed in app/adapters.ts). */
import { wrongProtocol, type Listener, type ProtocolAdapter } from '../../src/core/adapter.js';
import { httpConnection } from './config.js';
import { HttpListener } from './listener.js';

export const httpAdapter = {
  protocol: 'http',
  connectionSchema: httpConnection,
  createListener: (core, config, context) => (config.protocol === 'http' ? (new HttpListener(core, config, context) as Listener) : wrongProtocol('http', config)),
  eventKinds: ['http.exchange', 'websocket.frame', 'websocket.closed'],
} satisfies ProtocolAdapter<'http'>;
