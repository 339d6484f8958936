/**
 * The ceiling of the stack: a Node TCP proxy that does nothing but pipe bytes both ways
 * (TCP_NODELAY on both legs, as airlock sets it). No parsing, no policy, no audit. The
 * benchmarks run it beside airlock so that "what Node itself costs here" is measured, not guessed.
 *   npx tsx bench/tcp-pipe.ts LISTEN_PORT TARGET_PORT
 */
import { connect, createServer } from 'node:net';

const listen = Number(process.argv[2]);
const target = Number(process.argv[3]);
createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: '127.0.0.1', port: target, noDelay: true });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}).listen(listen, '127.0.0.1', () => process.stdout.write('ready\n'));
