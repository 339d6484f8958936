/**
 * The web console on the admin listener: sign-in, the live approvals inbox, sessions and
 * audit. Pages are server-rendered; /console/static/console.js adds the live parts. Every
 * state change is a POST that carries the session's CSRF token in a header (or form field)
 * and, when the browser sends one, a same-origin Origin header.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import type { Logger } from '../../util/log.js';
import type { Identity } from '../../core/types.js';
import { parseGrantChoice, type ApprovalBroker, type ApprovalRequest, type GrantChoice } from '../../approvals/index.js';
import { parseDuration } from '../../util/duration.js';
import { AirlockError, asAirlockError } from '../../util/errors.js';
import type { AdminRoute } from '../server.js';
import { readJsonBody, sendJson } from '../http.js';
import { ConsoleOidc, type ConsoleSignIn } from './oidc.js';
import { ConsoleSessions, LOGIN_COOKIE, SESSION_COOKIE, cookie, readCookie, sameSecret, type ConsoleSession } from './sessions.js';
import { escapeHtml, readForm, requestOrigin, sendHtml, SECURITY_HEADERS } from './html.js';
import { staticRoutes } from './static.js';
import { auditRoutes, sessionRoutes, type AuditView } from './records.js';

export interface ConsoleDeps {
  logger: Logger;
  signIn: ConsoleSignIn;
  authenticate(token: string): Promise<Identity>;
  broker: ApprovalBroker;
  /** With a shared state store: every node's pending requests, decided through the store. */
  fleet?: ConsoleFleet;
  audit: AuditView;
}

export interface ConsoleFleet {
  /** Every node's pending requests this caller's groups may decide. */
  list(caller: Identity): Promise<ApprovalRequest[]>;
  /** Every node's decided requests, newest last. */
  decided(limit: number): Promise<ApprovalRequest[]>;
  decide(id: string, caller: Identity, approve: boolean, reason?: string, grant?: GrantChoice): Promise<ApprovalRequest>;
  onChange(listener: () => void): void;
  /** Differs whenever a request was added or decided on any node. */
  version(): Promise<string>;
}

const HISTORY_SHOWN = 50;
const SSE_KEEPALIVE_MS = 15_000;

function protocolOf(r: ApprovalRequest): string {
  const a = r.action;
  if (a.kind === 'sql') return a.dialect === 'mysql' ? 'mysql' : 'postgres';
  if (a.kind === 'shell') return 'ssh';
  return a.kind;
}

function canSee(r: ApprovalRequest, who: Identity): boolean {
  const own = r.requester.subject === who.subject && r.requester.issuer === who.issuer;
  return own || who.groups.some((g) => r.approvers.includes(g));
}

/** What the inbox shows; the requester never gets buttons for their own request. */
export function approvalView(r: ApprovalRequest, who: Identity): Record<string, unknown> {
  const own = r.requester.subject === who.subject;
  return {
    id: r.id,
    requester: r.requester.subject,
    requesterKind: r.requester.kind,
    connection: r.connection,
    protocol: protocolOf(r),
    rule: r.rule,
    approvers: r.approvers,
    statement: r.summary,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    status: r.status,
    ...(r.decidedBy === undefined ? {} : { decidedBy: r.decidedBy }),
    ...(r.decidedAt === undefined ? {} : { decidedAt: r.decidedAt }),
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    ...(r.grantForMs === undefined ? {} : { grantForMs: r.grantForMs }),
    own,
    canDecide: r.status === 'pending' && !own && who.groups.some((g) => r.approvers.includes(g)),
  };
}

export function consoleRoutes(deps: ConsoleDeps): AdminRoute[] {
  const sessions = new ConsoleSessions();
  const oidc = new ConsoleOidc(deps.signIn);

  const current = (req: IncomingMessage): ConsoleSession | null => sessions.get(readCookie(req, SESSION_COOKIE));

  /** For JSON and SSE: a signed-in session or 401. */
  const needSession = (req: IncomingMessage): ConsoleSession => {
    const s = current(req);
    if (s === null) throw new AirlockError('AIRLOCK_AUTH_MISSING', 'sign in to the console first');
    return s;
  };

  /** Every state change: a session, its CSRF token, and no foreign Origin. */
  const needStateChange = (req: IncomingMessage, formToken?: string | null): ConsoleSession => {
    const s = needSession(req);
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== requestOrigin(req)) throw new AirlockError('AIRLOCK_FORBIDDEN', 'cross-origin request refused');
    const header = req.headers['x-csrf-token'];
    const token = typeof header === 'string' ? header : formToken ?? '';
    if (token === '' || !sameSecret(token, s.csrf)) throw new AirlockError('AIRLOCK_FORBIDDEN', 'missing or wrong CSRF token');
    return s;
  };

  const page = (handler: (ctx: { req: IncomingMessage; res: ServerResponse; url: URL; params: string[]; session: ConsoleSession }) => Promise<void>): AdminRoute['handler'] => {
    return async ({ req, res, url, params }) => {
      const session = current(req);
      if (session === null) {
        res.writeHead(303, { location: '/console/login', ...SECURITY_HEADERS }).end();
        return;
      }
      try {
        await handler({ req, res, url, params, session });
      } catch (e) {
        const err = asAirlockError(e);
        if (err.code === 'AIRLOCK_INTERNAL') deps.logger.error({ err: e, path: url.pathname }, 'console page failed');
        if (res.headersSent) res.destroy();
        else sendHtml(req, res, err.code === 'AIRLOCK_FORBIDDEN' ? 403 : err.code === 'AIRLOCK_UNSUPPORTED' ? 404 : 500, 'Error', `<main><h1>Not shown</h1><p class="error" data-code="${escapeHtml(err.code)}">${escapeHtml(err.message)}</p></main>`, { subject: session.identity.subject, groups: session.identity.groups, csrf: session.csrf, active: 'inbox' });
      }
    };
  };

  // The store's changes (another node's request or verdict) reach open inboxes as one event —
  // only when something did change: the store also calls onChange at every poll.
  const fleetChanged = new EventEmitter();
  fleetChanged.setMaxListeners(0);
  let seen = '';
  let checking = false;
  let again = false;
  const check = async (fleet: ConsoleFleet): Promise<void> => {
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    try {
      do {
        again = false;
        const v = await fleet.version();
        if (v !== seen) {
          seen = v;
          fleetChanged.emit('changed');
        }
      } while (again);
    } catch (e) {
      deps.logger.debug({ err: e instanceof Error ? e.message : String(e) }, 'console: could not read the state store; the next change retries');
    } finally {
      checking = false;
    }
  };
  const fleet = deps.fleet;
  fleet?.onChange(() => void check(fleet));

  const visibleApprovals = async (who: Identity): Promise<{ pending: unknown[]; history: unknown[] }> => {
    const mine = deps.broker.list().filter((r) => canSee(r, who));
    const here = new Set(mine.map((r) => r.id));
    const elsewhere = deps.fleet === undefined ? [] : (await deps.fleet.list(who)).filter((r) => !here.has(r.id));
    const pending = [...mine.filter((r) => r.status === 'pending'), ...elsewhere]
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((r) => approvalView(r, who));
    const decidedElsewhere = deps.fleet === undefined ? [] : (await deps.fleet.decided(HISTORY_SHOWN)).filter((r) => !here.has(r.id) && canSee(r, who));
    const history = [...mine, ...decidedElsewhere]
      .filter((r) => r.status !== 'pending')
      .sort((a, b) => (b.decidedAt ?? 0) - (a.decidedAt ?? 0))
      .slice(0, HISTORY_SHOWN)
      .map((r) => approvalView(r, who));
    return { pending, history };
  };

  return [
    ...staticRoutes(),
    {
      method: 'GET',
      pattern: /^\/console\/login$/,
      handler: async ({ req, res }) => {
        const { url, verifier, state } = await oidc.authorizationUrl(requestOrigin(req));
        const key = sessions.startLogin({ verifier, state });
        res.writeHead(303, { location: url.toString(), 'set-cookie': cookie(req, LOGIN_COOKIE, key, 600), ...SECURITY_HEADERS }).end();
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/callback$/,
      handler: async ({ req, res, url }) => {
        try {
          const login = sessions.takeLogin(readCookie(req, LOGIN_COOKIE));
          if (login === null) throw new AirlockError('AIRLOCK_AUTH_INVALID', 'this sign-in was not started here or has expired; start again');
          const idToken = await oidc.finish(requestOrigin(req), url, login);
          const identity = await deps.authenticate(idToken);
          const s = sessions.create(identity);
          deps.logger.info({ event: 'console.signin', subject: identity.subject, issuer: identity.issuer }, 'console sign-in');
          res
            .writeHead(303, {
              location: '/console',
              'set-cookie': [cookie(req, SESSION_COOKIE, s.id, (identity.expiresAt - Date.now()) / 1000), cookie(req, LOGIN_COOKIE, '', 0)],
              ...SECURITY_HEADERS,
            })
            .end();
        } catch (e) {
          const err = asAirlockError(e);
          sendHtml(req, res, 401, 'Sign-in failed', `<main class="narrow"><h1>Sign-in failed</h1><p class="error" data-code="${escapeHtml(err.code)}">${escapeHtml(err.message)}</p><p><a href="/console/login">Try again</a></p></main>`);
        }
      },
    },
    {
      method: 'POST',
      pattern: /^\/console\/logout$/,
      handler: async ({ req, res }) => {
        const form = await readForm(req);
        const s = needStateChange(req, form.get('csrf'));
        sessions.end(s.id);
        res.writeHead(303, { location: '/console/signed-out', 'set-cookie': cookie(req, SESSION_COOKIE, '', 0), ...SECURITY_HEADERS }).end();
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/signed-out$/,
      handler: async ({ req, res }) => sendHtml(req, res, 200, 'Signed out', '<main class="narrow"><h1>Signed out</h1><p><a href="/console/login">Sign in again</a></p></main>'),
    },
    {
      method: 'GET',
      pattern: /^\/console\/?$/,
      handler: page(async ({ req, res, session }) => {
        const who = session.identity;
        sendHtml(
          req,
          res,
          200,
          'Approvals',
          `<main data-page="inbox"><h1>Waiting for a decision</h1><p class="hint">Updates live. Statements are shown exactly as sent.</p><section id="pending" aria-live="polite"><p class="empty">Nothing is waiting.</p></section><h2>Decided</h2><section id="history"></section></main>`,
          { subject: who.subject, groups: who.groups, csrf: session.csrf, active: 'inbox' },
        );
      }),
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/approvals$/,
      handler: async ({ req, res }) => {
        const s = needSession(req);
        sendJson(res, 200, { now: Date.now(), ...(await visibleApprovals(s.identity)) });
      },
    },
    {
      method: 'POST',
      pattern: /^\/console\/api\/approvals\/([A-Za-z0-9_-]+)\/(approve|deny)$/,
      handler: async ({ req, res, params }) => {
        const s = needStateChange(req);
        const body = await readJsonBody(req, 8 * 1024);
        const fields = typeof body === 'object' && body !== null ? (body as { reason?: unknown; grant_for?: unknown }) : {};
        const raw = fields.reason;
        const reason = typeof raw === 'string' && raw.trim() !== '' ? raw.slice(0, 500) : undefined;
        const approve = params[1] === 'approve';
        const grant = approve ? parseGrantChoice(fields.grant_for) : undefined;
        const id = params[0] ?? '';
        const decided =
          deps.fleet === undefined ? deps.broker.decide(id, s.identity, approve, reason, grant) : await deps.fleet.decide(id, s.identity, approve, reason, grant);
        sendJson(res, 200, { approval: approvalView(decided, s.identity) });
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/events$/,
      handler: async ({ req, res }) => {
        const s = needSession(req);
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
        res.write('retry: 2000\n\n');
        const send = (r: ApprovalRequest): void => {
          if (current(req)?.id !== s.id) {
            res.end();
            return;
          }
          if (canSee(r, s.identity)) res.write(`event: approval\ndata: ${JSON.stringify({ id: r.id, status: r.status })}\n\n`);
        };
        const keepalive = setInterval(() => {
          if (current(req)?.id !== s.id) res.end();
          else res.write(': keepalive\n\n');
        }, SSE_KEEPALIVE_MS);
        keepalive.unref();
        const changed = (): void => {
          if (current(req)?.id !== s.id) res.end();
          else res.write('event: approval\ndata: {}\n\n');
        };
        deps.broker.on('requested', send);
        deps.broker.on('decided', send);
        fleetChanged.on('changed', changed);
        res.on('close', () => {
          fleetChanged.off('changed', changed);
          clearInterval(keepalive);
          deps.broker.off('requested', send);
          deps.broker.off('decided', send);
        });
      },
    },
    ...sessionRoutes(deps.audit, page),
    ...auditRoutes(deps.audit, page, needSession, needStateChange),
  ];
}

