/** Free TCP ports on loopback for test servers; never one of the well-known service ports. */
import { createServer } from 'node:net';

const RESERVED = new Set([22, 80, 443, 3306, 5432]);

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A port nothing listens on right now (there is a small race until the caller binds it). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await ephemeralPort();
    if (port !== 0 && !RESERVED.has(port)) return port;
  }
}
