// connectUpstream against a raw socket peer that misbehaves the way a hostile or broken
// server could: what a real PostgreSQL never sends, airlock must still refuse cleanly.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { FrameReader, type Frame } from '../../protocols/postgres/codec/framing.js';
import {
  encodeAuthenticationOk, encodeAuthenticationSASL, encodeAuthenticationSASLContinue, encodeAuthenticationSASLFinal,
  encodeBackendKeyData, encodeParameterStatus, encodeReadyForQuery,
} from '../../protocols/postgres/codec/backend.js';
import { connectUpstream } from '../../protocols/postgres/upstream.js';
import { AirlockError } from '../../src/util/errors.js';
import { Secret } from '../../src/secrets/index.js';

type Script = (socket: Socket, frame: Frame, index: number) => void;

let server: Server | null = null;

/** A peer that answers each client frame (startup packet first) through `script`. */
async function peer(script: Script, startup = true): Promise<number> {
  server = createServer((socket) => {
    const reader = new FrameReader({ maxMessageBytes: 1 << 16, maxStartupBytes: 1 << 12, startup });
    let index = 0;
    socket.on('error', () => undefined);
    let reading = true;
    socket.on('data', (chunk) => {
      if (!reading) return;
      try {
        reader.push(chunk, (f) => {
          if (f.type === 0) reader.expectStartup(false);
          script(socket, f, index++);
        });
      } catch {
        reading = false; // e.g. a TLS ClientHello read as a startup packet: just stop listening
      }
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return typeof addr === 'object' && addr !== null ? addr.port : 0;
}

afterEach(async () => {
  await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())));
  server = null;
});

const opts = (port: number, tls: 'disable' | 'require' = 'disable') => ({
  host: '127.0.0.1', port, database: 'db', tls, username: 'u', password: new Secret('peer-secret-pw'), maxMessageBytes: 1 << 16, connectTimeoutMs: 2_000,
});

async function failure(p: Promise<unknown>): Promise<AirlockError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(AirlockError);
  expect(String((e as Error).message)).not.toContain('peer-secret-pw');
  return e as AirlockError;
}

/** The client's SASL messages, read the way a server would. */
function clientNonce(f: Frame): string {
  const text = f.payload.toString('latin1');
  return /r=([^,\0]+)/.exec(text)?.[1] ?? '';
}

const serverFirst = (nonce: string): Buffer => Buffer.from(`r=${nonce}srv,s=${Buffer.from('salty').toString('base64')},i=4096`);

describe('connectUpstream against a misbehaving peer', () => {
  it('refuses a server that skips the SCRAM final message', async () => {
    const port = await peer((s, f, i) => {
      if (i === 0) s.write(encodeAuthenticationSASL(['SCRAM-SHA-256']));
      if (i === 1) s.write(encodeAuthenticationSASLContinue(serverFirst(clientNonce(f))));
      if (i === 2) s.write(Buffer.concat([encodeAuthenticationOk(), encodeReadyForQuery('I')]));
    });
    const e = await failure(connectUpstream(opts(port)));
    expect(e.code).toBe('AIRLOCK_UPSTREAM_AUTH');
  });

  it('refuses a server whose SCRAM signature is wrong', async () => {
    const port = await peer((s, f, i) => {
      if (i === 0) s.write(encodeAuthenticationSASL(['SCRAM-SHA-256']));
      if (i === 1) s.write(encodeAuthenticationSASLContinue(serverFirst(clientNonce(f))));
      if (i === 2) s.write(encodeAuthenticationSASLFinal(Buffer.from(`v=${Buffer.alloc(32, 1).toString('base64')}`)));
    });
    const e = await failure(connectUpstream(opts(port)));
    expect(e.code).toBe('AIRLOCK_UPSTREAM_AUTH');
    expect(e.message).toContain('signature');
  });

  it('refuses a SCRAM server nonce that does not extend ours', async () => {
    const port = await peer((s, _f, i) => {
      if (i === 0) s.write(encodeAuthenticationSASL(['SCRAM-SHA-256']));
      if (i === 1) s.write(encodeAuthenticationSASLContinue(serverFirst('someone-elses-nonce')));
    });
    expect((await failure(connectUpstream(opts(port)))).code).toBe('AIRLOCK_UPSTREAM_AUTH');
  });

  it('refuses SASL without SCRAM-SHA-256', async () => {
    const port = await peer((s) => s.write(encodeAuthenticationSASL(['SCRAM-SHA-1'])));
    expect((await failure(connectUpstream(opts(port)))).code).toBe('AIRLOCK_UPSTREAM_AUTH');
  });

  it('refuses bytes injected after the SSLRequest answer (CVE-2021-23222)', async () => {
    const port = await peer((s) => s.write(Buffer.concat([Buffer.from('S'), encodeAuthenticationOk()])), true);
    expect((await failure(connectUpstream(opts(port, 'require')))).code).toBe('AIRLOCK_PROTOCOL');
  });

  it('gives up on a silent server within connectTimeoutMs', async () => {
    const port = await peer(() => undefined);
    expect((await failure(connectUpstream({ ...opts(port), connectTimeoutMs: 200 }))).code).toBe('AIRLOCK_UPSTREAM_UNAVAILABLE');
  });

  it('gives up on a server that accepts TLS but never completes the handshake, and closes the socket', async () => {
    let closed: Promise<void> = Promise.resolve();
    const port = await peer((s) => {
      closed = new Promise((resolve) => s.once('close', () => resolve()));
      s.write('S');
    });
    expect((await failure(connectUpstream({ ...opts(port, 'require'), connectTimeoutMs: 300 }))).code).toBe('AIRLOCK_UPSTREAM_UNAVAILABLE');
    await closed;
  });

  it('reports a server that hangs up during startup', async () => {
    const port = await peer((s) => s.destroy());
    expect((await failure(connectUpstream(opts(port)))).code).toBe('AIRLOCK_UPSTREAM_UNAVAILABLE');
  });

  it('refuses an oversized message during startup', async () => {
    const port = await peer((s) => s.write(Buffer.from([0x53, 0x7f, 0xff, 0xff, 0xff])));
    expect((await failure(connectUpstream(opts(port)))).code).toBe('AIRLOCK_TOO_LARGE');
  });

  it('hands back bytes that followed ReadyForQuery in the same chunk', async () => {
    const port = await peer((s) => {
      s.write(Buffer.concat([
        encodeAuthenticationOk(), encodeParameterStatus('server_version', '99.1'), encodeParameterStatus('TimeZone', 'UTC'),
        encodeBackendKeyData(7, 8), encodeReadyForQuery('I'), encodeParameterStatus('late', 'x'), Buffer.from([0x5a, 0, 0]),
      ]));
    });
    const conn = await connectUpstream(opts(port));
    try {
      expect(conn.serverVersion).toBe('99.1');
      expect([...conn.parameters.keys()]).toEqual(['server_version', 'TimeZone']);
      expect(conn.backendKey).toEqual({ pid: 7, secret: 8 });
      expect(conn.leftover.equals(Buffer.concat([encodeParameterStatus('late', 'x'), Buffer.from([0x5a, 0, 0])]))).toBe(true);
    } finally {
      conn.socket.destroy();
    }
  });
});
