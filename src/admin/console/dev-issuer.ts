/**
 * The dev issuer's browser side (auth.dev_issuer only): an authorize page where you pick
 * who to be — no password, exactly as trusting as `airlock token mint` — and a token
 * endpoint that checks the PKCE verifier and returns an ID token signed with the dev key.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AirlockError } from '../../util/errors.js';
import type { AdminRoute } from '../server.js';
import { sendJson } from '../http.js';
import { DEV_ISSUER, AIRLOCK_AUDIENCE, signToken } from '../../auth/verifier.js';
import type { SigningKey } from '../../auth/keys.js';
import { CALLBACK_PATH } from './oidc.js';
import { escapeHtml, sendHtml, readForm, requestOrigin } from './html.js';

export const DEV_USERS: ReadonlyArray<{ subject: string; groups: string[]; role: string }> = [
  { subject: 'alice', groups: ['dba'], role: 'approver (group dba)' },
  { subject: 'bob', groups: ['dev'], role: 'requester (group dev)' },
];
const CODE_TTL_MS = 60_000;
const ID_TOKEN_TTL_MS = 8 * 3_600_000;

interface Grant {
  subject: string;
  groups: string[];
  redirectUri: string;
  challenge: string;
  expiresAt: number;
}

function tokenError(res: ServerResponse, error: string, description: string): void {
  sendJson(res, 400, { error, error_description: description });
}

export function devIssuerRoutes(key: () => Promise<SigningKey>): AdminRoute[] {
  const codes = new Map<string, Grant>();

  const checkRequest = (req: IncomingMessage, p: URLSearchParams): { redirectUri: string; state: string; challenge: string } => {
    const redirectUri = p.get('redirect_uri') ?? '';
    if (p.get('client_id') !== AIRLOCK_AUDIENCE) throw new AirlockError('AIRLOCK_FORBIDDEN', 'unknown client_id');
    if (redirectUri !== `${requestOrigin(req)}${CALLBACK_PATH}`) throw new AirlockError('AIRLOCK_FORBIDDEN', 'redirect_uri is not this console');
    if (p.get('response_type') !== 'code') throw new AirlockError('AIRLOCK_FORBIDDEN', 'only response_type=code');
    if (p.get('code_challenge_method') !== 'S256' || (p.get('code_challenge') ?? '') === '') throw new AirlockError('AIRLOCK_FORBIDDEN', 'PKCE with S256 is required');
    return { redirectUri, state: p.get('state') ?? '', challenge: p.get('code_challenge') ?? '' };
  };

  return [
    {
      method: 'GET',
      pattern: /^\/dev-issuer\/authorize$/,
      handler: async ({ req, res, url }) => {
        checkRequest(req, url.searchParams);
        const hidden = [...url.searchParams].map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`).join('');
        const choices = DEV_USERS.map(
          (u) => `<button type="submit" name="login_as" value="${escapeHtml(u.subject)}" data-user="${escapeHtml(u.subject)}">Sign in as ${escapeHtml(u.subject)} — ${escapeHtml(u.role)}</button>`,
        ).join('');
        sendHtml(req, res, 200, 'Dev issuer', `<main class="narrow"><h1>airlock dev issuer</h1><p>Development only: anyone who can reach this page can be anyone below.</p><p>The console asks for your identity (scope <code>${escapeHtml(url.searchParams.get('scope') ?? '')}</code>).</p><form method="post" action="/dev-issuer/authorize" class="consent">${hidden}${choices}</form></main>`);
      },
    },
    {
      method: 'POST',
      pattern: /^\/dev-issuer\/authorize$/,
      handler: async ({ req, res }) => {
        const p = await readForm(req);
        const { redirectUri, state, challenge } = checkRequest(req, p);
        const user = DEV_USERS.find((u) => u.subject === p.get('login_as'));
        if (user === undefined) throw new AirlockError('AIRLOCK_FORBIDDEN', 'unknown dev user');
        const code = randomBytes(24).toString('base64url');
        codes.set(code, { subject: user.subject, groups: user.groups, redirectUri, challenge, expiresAt: Date.now() + CODE_TTL_MS });
        const back = new URL(redirectUri);
        back.searchParams.set('code', code);
        if (state !== '') back.searchParams.set('state', state);
        back.searchParams.set('iss', DEV_ISSUER);
        res.writeHead(303, { location: back.toString(), 'cache-control': 'no-store' }).end();
      },
    },
    {
      method: 'POST',
      pattern: /^\/dev-issuer\/token$/,
      handler: async ({ req, res }) => {
        const p = await readForm(req);
        const grant = codes.get(p.get('code') ?? '');
        codes.delete(p.get('code') ?? '');
        if (p.get('grant_type') !== 'authorization_code' || grant === undefined || Date.now() > grant.expiresAt) {
          tokenError(res, 'invalid_grant', 'unknown or expired code');
          return;
        }
        const verifier = p.get('code_verifier') ?? '';
        const challenge = createHash('sha256').update(verifier).digest('base64url');
        if (p.get('client_id') !== AIRLOCK_AUDIENCE || p.get('redirect_uri') !== grant.redirectUri || challenge !== grant.challenge) {
          tokenError(res, 'invalid_grant', 'code_verifier, client_id or redirect_uri does not match');
          return;
        }
        const idToken = await signToken(await key(), DEV_ISSUER, grant.subject, grant.groups, 'human', Date.now() + ID_TOKEN_TTL_MS);
        sendJson(res, 200, { access_token: idToken, token_type: 'Bearer', id_token: idToken, expires_in: Math.floor(ID_TOKEN_TTL_MS / 1000) });
      },
    },
  ];
}
