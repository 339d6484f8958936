/**
 * The HTTP gateway's policy side: what a session's answers must have masked and scrubbed
 * (its body plan), the verdict on one request (held requests wait, bounded), and a declared
 * body over the limit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Session } from '../../src/core/session-types.js';
import type { HttpConnectionConfig } from './config.js';
import { AirlockError } from '../../src/util/errors.js';
import { DetectorRules } from '../../src/masking/index.js';
import { compileJsonPaths } from '../../src/masking/json-paths.js';
import { METHOD_OVERRIDE_RULE } from '../../src/policy/index.js';
import { injectedSecrets } from '../../src/masking/secret-forms.js';
import { guardSecrets } from '../../src/audit/scrub.js';
import type { Target } from './path.js';
import type { BodyPlan } from './body.js';
import { isEffectFreeHttp } from '../../src/audit/effect-free-http.js';

/** A JSON answer larger than this is not masked whole (see respond.ts). */
const MAX_JSON_BYTES = 16 * 1024 * 1024;

/** What must be masked and scrubbed in this session's answers: fixed for the session. */
export function bodyPlan(config: HttpConnectionConfig, session: Session, key: Buffer): BodyPlan {
  const secrets = new Set<string>();
  if (config.credentials.type !== 'none') {
    // The value, the credential after its scheme, a Basic pair: every written form of each is scrubbed (body.ts).
    for (const v of injectedSecrets(session.lease.secret.reveal())) secrets.add(v);
    // The audit log cuts them from every event while the session is open (and the tick its end is recorded in).
    const release = guardSecrets([...secrets]);
    if (session.signal.aborted) setImmediate(release);
    else session.signal.addEventListener('abort', () => setImmediate(release), { once: true });
  }
  const plan = session.maskPlan;
  return {
    detectors: new DetectorRules(plan.detectors),
    jsonPaths: plan.jsonPaths.length === 0 ? null : compileJsonPaths(plan.jsonPaths),
    // Frozen: fixed for the session, so its compiled forms are found once (body.ts formsOfSecrets).
    secrets: Object.freeze([...secrets]),
    key,
    maxJsonBytes: MAX_JSON_BYTES,
  };
}

/**
 * Policy for the request: `refusal` null when it may go on. A held request waits (bounded),
 * then goes on or is refused. `durable` is set when the request may be forwarded before its
 * record is durable (src/audit/effect-free-http.ts): nothing of its answer may reach the
 * client before it settles, and if it rejects, the client gets its error instead.
 */
export async function decide(config: HttpConnectionConfig, session: Session, method: string, target: Target, req: IncomingMessage, res: ServerResponse, websocket: boolean): Promise<{ refusal: AirlockError | null; durable: Promise<void> | null }> {
  const path = target.path;
  const headers: Record<string, string> = {};
  const authHeader = config.auth_header.toLowerCase();
  const raw = req.headers;
  for (const k in raw) {
    const v = raw[k];
    if (k === authHeader || k === 'authorization' || k === 'cookie' || k === 'proxy-authorization' || v === undefined || !Object.hasOwn(raw, k)) continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  let approvalId: string | null = null;
  const action = { kind: 'http', method, path, headers, ...(target.query === '' ? {} : { query: target.query }), ...(websocket ? { websocket } : {}) } as const;
  // Without an audit there is no record to wait for: no request is judged for pipelining, none waits on `durable`.
  const pipelined = session.audited && isEffectFreeHttp({ method, headers, query: target.query, websocket }, config.audit.pipeline_methods);
  let durable: Promise<void> | null = null;
  const onHold = (hold: { approvalId: string; rule: string }): void => {
    approvalId = hold.approvalId;
    session.logger.info({ approval: hold.approvalId, rule: hold.rule, method, path }, 'http request held for approval');
    // 103 Early Hints: the caller learns the approval id while it waits.
    try {
      res.writeEarlyHints({ 'x-airlock-approval': hold.approvalId });
    } catch {
      // a client that cannot take informational responses still gets the verdict
    }
  };
  const check = pipelined
    ? session.checkEffectFree(action, onHold).then((c) => {
        durable = c.durable;
        return c.decision;
      })
    : session.check(action, onHold);
  const limit = config.hold_timeout;
  let timer: NodeJS.Timeout | undefined;
  const decision = limit === undefined
    ? await check
    : await Promise.race([check, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), limit)))]);
  clearTimeout(timer);
  if (decision === 'timeout') {
    return { refusal: new AirlockError('AIRLOCK_APPROVAL_TIMEOUT', `approval ${approvalId ?? ''} was not decided within ${Math.round((limit ?? 0) / 1000)} s`.replace('  ', ' ')), durable: null };
  }
  if (decision.effect === 'deny') {
    // A method override no rule admits is a request airlock will not read two ways: 400, like an ambiguous path.
    const code = decision.rule === METHOD_OVERRIDE_RULE ? 'AIRLOCK_PROTOCOL' : 'AIRLOCK_DENIED';
    return { refusal: new AirlockError(code, `denied by rule ${decision.rule}: ${decision.reason}`, { rule: decision.rule }), durable: null };
  }
  return { refusal: null, durable };
}

export function declaredTooLarge(config: HttpConnectionConfig, req: IncomingMessage): AirlockError | null {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > config.max_request_bytes) return new AirlockError('AIRLOCK_TOO_LARGE', `the request body exceeds ${config.max_request_bytes} bytes`);
  return null;
}
