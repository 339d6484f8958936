/**
 * WebSocket upgrades through the HTTP gateway: a handshake takes the same path as any
 * request (see listener.ts), then goes upstream here; a 101 hands both sockets to the
 * frame relay (websocket.ts). Other upgrades are refused.
 */
import { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import type { BodyPlan } from './body.js';
import { switchingProtocolsHead, websocketUpgradeFields } from './headers.js';
import { clientHeaders } from './respond.js';
import { WebSocketRelay } from './websocket.js';
import { sendProblem, statusFor } from './problem.js';
import { record, upstreamHeaders, upstreamRequest, type Exchange, type Hop } from './forward.js';

/** A WebSocket opening handshake's connection, handed over by the server's 'upgrade' event. */
export interface Upgrade {
  socket: Socket;
  /** Bytes after the request's header block. */
  head: Buffer;
}

/** RFC 6455 §4.2.1: a GET with Upgrade: websocket, a key and version 13. Anything else is not a WebSocket handshake. */
export function isWebSocketHandshake(req: IncomingMessage): boolean {
  return (
    req.method === 'GET' &&
    String(req.headers.upgrade ?? '').trim().toLowerCase() === 'websocket' &&
    typeof req.headers['sec-websocket-key'] === 'string' &&
    req.headers['sec-websocket-version'] === '13'
  );
}

/**
 * The handshake goes upstream; a 101 is relayed to the client (its fields end-to-end and
 * scrubbed, Upgrade/Connection set for this hop) and the frames flow. Any other answer,
 * or a switch airlock cannot follow, is a 502 and nothing of the upstream's answer passes.
 */
export function forwardUpgrade(hop: Hop, x: Exchange, res: ServerResponse, plan: BodyPlan, client: Upgrade, token: string): Promise<void> {
  const upReq = upstreamRequest(hop, x, websocketUpgradeFields(upstreamHeaders(hop, x, plan)), false);
  upReq.setTimeout(hop.config.upstream.timeout, () => upReq.destroy(new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${hop.config.name}" did not answer in time`)));
  return new Promise<void>((resolve) => {
    let settled = false;
    const fail = (e: unknown, upstreamMs?: number): void => {
      if (settled) return;
      settled = true;
      upReq.destroy();
      const err = asAirlockError(e);
      const shown = err.code === 'AIRLOCK_INTERNAL' ? new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${hop.config.name}" could not be reached`) : err;
      sendProblem(res, shown, x.requestId);
      record(hop, x, { status: statusFor(shown), error: shown, ...(upstreamMs === undefined ? {} : { upstreamMs }) });
      resolve();
    };
    upReq.on('error', (e) => fail(e));
    upReq.on('response', (upRes) => {
      upRes.resume();
      fail(new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream answered the WebSocket handshake with ${upRes.statusCode ?? 0} instead of 101`), Date.now() - x.started);
    });
    upReq.on('upgrade', (upRes: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
      const upstreamMs = Date.now() - x.started;
      const refuse = (e: AirlockError): void => {
        upSocket.destroy();
        fail(e, upstreamMs);
      };
      if (String(upRes.headers.upgrade ?? '').trim().toLowerCase() !== 'websocket') return refuse(new AirlockError('AIRLOCK_UNSUPPORTED', 'the upstream switched to another protocol than WebSocket'));
      // None was offered; frames airlock cannot read (permessage-deflate) do not pass.
      if (upRes.headers['sec-websocket-extensions'] !== undefined) return refuse(new AirlockError('AIRLOCK_UNSUPPORTED', 'the upstream negotiated a WebSocket extension airlock did not offer'));
      if (client.socket.destroyed) return refuse(new AirlockError('AIRLOCK_UPSTREAM_LOST', 'the client went away before the WebSocket opened'));
      settled = true;
      const headers = { ...clientHeaders(upRes, plan.secrets), 'x-request-id': x.requestId };
      res.detachSocket(client.socket);
      client.socket.write(switchingProtocolsHead(headers));
      record(hop, x, { status: 101, upstreamMs, sent: { status: 101, headers, body: null, bytes: 0 } });
      const relay = new WebSocketRelay({
        session: x.session,
        requestId: x.requestId,
        path: x.path,
        client: client.socket,
        clientHead: client.head,
        upstream: upSocket,
        upstreamHead: upHead,
        plan,
        maxFrameBytes: hop.config.websocket.max_frame_bytes,
        recordTextBytes: hop.config.record.body_bytes,
        unrecordable: [...plan.secrets, token],
        onEnd: () => hop.websockets.delete(relay),
      });
      hop.websockets.add(relay);
      relay.start();
      resolve();
    });
    upReq.end();
  });
}

/** Upgrades other than a WebSocket handshake (h2c, a malformed handshake …) are refused: airlock cannot read what would follow. */
export function refuseUpgrade(hop: Hop, req: IncomingMessage, socket: Socket): void {
  const body = JSON.stringify({ type: 'urn:airlock:error:AIRLOCK_FORBIDDEN', title: 'forbidden', status: 403, code: 'AIRLOCK_FORBIDDEN', detail: 'only WebSocket upgrades (RFC 6455, version 13) can pass through airlock, where a rule allows them' });
  socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  hop.core.logger.info({ connection: hop.config.name, path: req.url?.split('?')[0] }, 'http upgrade refused');
}
