/**
 * The HTTP connection's config schema: its section of the config file, composed with the
 * core's keys by app/config.ts (issue 22). Shared fields (duration, listen, tls …) come from the core.
 */
import { z } from 'zod';
import { duration, listen, tlsListener } from '../../src/config/index.js';

// ---- HTTP (protocols/http) ----

const httpHeaderCredentials = z.strictObject({
  type: z.literal('header'),
  name: z.string().min(1),
  /** The value, usually with a secret reference: "Bearer ${op:ai/llm-key/credential}". */
  value: z.string(),
  /** Put it in a header (default) or a query parameter named `name`. */
  in: z.enum(['header', 'query']).default('header'),
});

const httpJwtCredentials = z.strictObject({
  type: z.literal('jwt'),
  audience: z.string().min(1),
  ttl: duration.default(300_000),
  header: z.string().default('authorization'),
});

const httpNoCredentials = z.strictObject({ type: z.literal('none') });

export const httpConnection = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . -'),
  protocol: z.literal('http'),
  listen,
  tls: tlsListener.optional(),
  upstream: z.strictObject({
    base_url: z.string().url(),
    /** CA bundle (PEM file) for an HTTPS upstream; default: the system trust store. */
    ca: z.string().optional(),
    tls: z.enum(['verify-full', 'insecure']).default('verify-full'),
    timeout: duration.default(300_000),
  }),
  credentials: z.discriminatedUnion('type', [httpHeaderCredentials, httpJwtCredentials, httpNoCredentials]),
  allow_groups: z.array(z.string()).default([]),
  /** The request header that carries the caller's token (default: Authorization: Bearer …). */
  auth_header: z.string().default('authorization'),
  max_request_bytes: z.number().int().min(0).default(10 * 1024 * 1024),
  /** Held requests wait at most this long for a verdict. */
  hold_timeout: duration.optional(),
  record: z
    .strictObject({ body_bytes: z.number().int().min(0).default(64 * 1024) })
    .default({ body_bytes: 64 * 1024 }),
  /** WebSockets (admitted by a rule with `http.websocket: true`): a longer frame closes both sides with 1009. */
  websocket: z
    .strictObject({ max_frame_bytes: z.number().int().min(125).default(16 * 1024 * 1024) })
    .default({ max_frame_bytes: 16 * 1024 * 1024 }),
  /**
   * Write-ahead audit: a request of one of these (safe) methods is forwarded while its record
   * syncs, and its answer is held until the record is durable; any other method's record is
   * durable before the request is forwarded. [] syncs every record first.
   */
  audit: z
    .strictObject({ pipeline_methods: z.array(z.enum(['GET', 'HEAD', 'OPTIONS'])).default(['GET', 'HEAD']) })
    .default({ pipeline_methods: ['GET', 'HEAD'] }),
  drain_timeout: duration.optional(),
  /** From connect to a verified token; a connection that takes longer is closed. */
  auth_timeout: duration.default(30_000),
});

export type HttpConnectionConfig = z.output<typeof httpConnection>;

declare module '../../src/config/index.js' {
  interface ConnectionConfigs {
    http: HttpConnectionConfig;
  }
}
