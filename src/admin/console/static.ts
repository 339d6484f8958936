/**
 * The console's static files: its own script and stylesheet from web/, and asciinema-player's
 * prebuilt bundle from node_modules — all served from this origin, nothing from a CDN.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AirlockError } from '../../util/errors.js';
import type { AdminRoute } from '../server.js';
import { SECURITY_HEADERS } from './html.js';

/** web/ at the package root, from src/admin/console (tsx) or dist/src/admin/console (built). */
function webDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'web', 'console.js')) && existsSync(join(dir, 'package.json'))) return join(dir, 'web');
    dir = dirname(dir);
  }
  throw new AirlockError('AIRLOCK_INTERNAL', 'console files (web/) not found');
}

function files(): Map<string, { path: string; type: string }> {
  const require = createRequire(import.meta.url);
  const web = webDir();
  return new Map([
    ['console.js', { path: join(web, 'console.js'), type: 'text/javascript; charset=utf-8' }],
    ['console.css', { path: join(web, 'console.css'), type: 'text/css; charset=utf-8' }],
    ['player.js', { path: require.resolve('asciinema-player/dist/bundle/asciinema-player.min.js'), type: 'text/javascript; charset=utf-8' }],
    ['player.css', { path: require.resolve('asciinema-player/dist/bundle/asciinema-player.css'), type: 'text/css; charset=utf-8' }],
  ]);
}

export function staticRoutes(): AdminRoute[] {
  let table: Map<string, { path: string; type: string }> | null = null;
  const cache = new Map<string, Buffer>();
  return [
    {
      method: 'GET',
      pattern: /^\/console\/static\/([a-z.]+)$/,
      handler: async ({ res, params }) => {
        table ??= files();
        const f = table.get(params[0] ?? '');
        if (f === undefined) throw new AirlockError('AIRLOCK_UNSUPPORTED', 'not found');
        let body = cache.get(f.path);
        if (body === undefined) {
          body = await readFile(f.path);
          cache.set(f.path, body);
        }
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': f.type, 'content-length': body.length, 'cache-control': 'private, max-age=300' });
        res.end(body);
      },
    },
  ];
}
