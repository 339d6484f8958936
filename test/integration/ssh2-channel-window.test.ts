/**
 * patches/ssh2+1.17.0.patch: a server channel's stdout and stderr share the client's window.
 * Unpatched, a window adjust resumed only one waiting chunk (stdout first), so stderr waiting
 * beside stdout was never sent (the command hung, or its output was cut when the channel
 * closed), and a chunk once written stayed stored, to be replayed by a later adjust (stdout
 * duplicated). Real ssh2 server and client, in process, each side a real peer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import type { ServerChannel } from 'ssh2';

const MiB = 1024 * 1024;

/** What the server does on exec, by command name. */
const scripts: Record<string, (stream: ServerChannel) => void> = {
  // 3 MiB of stderr fill the 2 MiB window: the rest waits, and 'done' waits beside it.
  'stderr-then-stdout': (stream) => {
    stream.stderr.write(Buffer.alloc(3 * MiB, 'e'));
    stream.write('done\n');
    finish(stream);
  },
  // stdout waits for the window once and gets through; then stderr waits for it.
  'stdout-then-stderr': (stream) => {
    if (stream.write(Buffer.alloc(3 * MiB, 'o'))) throw new Error('3 MiB fit in the window');
    stream.once('drain', () => {
      stream.stderr.write(Buffer.alloc(3 * MiB, 'e'));
      finish(stream);
    });
  },
};

function finish(stream: ServerChannel): void {
  stream.stderr.end();
  stream.stderr.once('finish', () => {
    stream.exit(0);
    stream.end();
  });
}

let server: ssh2.Server;
let port = 0;

beforeAll(async () => {
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  server = new ssh2.Server({ hostKeys: [hostKey] }, (conn) => {
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('session', (accept) => {
      accept().on('exec', (acc, _rej, info) => scripts[info.command]?.(acc()));
    });
    conn.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function exec(command: string): Promise<{ stdout: Buffer; stderr: Buffer; code: number | null }> {
  const client = new ssh2.Client();
  return new Promise((resolve, reject) => {
    client.on('error', reject);
    client.on('ready', () => {
      client.exec(command, (err, ch) => {
        if (err) return reject(err);
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        let code: number | null = null;
        let waiting = 2;
        const done = (): void => {
          if (--waiting > 0) return;
          client.end();
          resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(errs), code });
        };
        ch.on('data', (d: Buffer) => out.push(d));
        ch.stderr.on('data', (d: Buffer) => errs.push(d));
        ch.on('exit', (c: number | null) => (code = c));
        ch.on('close', done);
        ch.stderr.on('end', done);
      });
    });
    client.connect({ host: '127.0.0.1', port, username: 'u', hostVerifier: () => true });
  });
}

describe('ssh2 server channel: stdout and stderr share the window', () => {
  it('stderr waiting beside stdout is sent when the window opens (nothing lost, no hang)', async () => {
    const r = await exec('stderr-then-stdout');
    expect(r.stderr.length).toBe(3 * MiB);
    expect(r.stdout.toString()).toBe('done\n');
    expect(r.code).toBe(0);
  });

  it('a stdout chunk that waited once is never replayed when stderr waits later', async () => {
    const r = await exec('stdout-then-stderr');
    expect(r.stdout.length).toBe(3 * MiB);
    expect(r.stderr.length).toBe(3 * MiB);
    expect(r.code).toBe(0);
  });
}, 30_000);
