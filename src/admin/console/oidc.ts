/**
 * Sign-in with the configured OIDC issuer: authorization code + PKCE (RFC 7636) through
 * openid-client. The ID token it returns is then checked by airlock's own token verifier,
 * like any token a client presents, so the console trusts exactly the issuers the
 * gateway trusts and nothing more.
 */
import * as client from 'openid-client';
import { DEV_ISSUER, AIRLOCK_AUDIENCE } from '../../auth/verifier.js';
import { AirlockError } from '../../util/errors.js';

export type ConsoleSignIn =
  /** airlock's own dev issuer, served on this admin listener under /dev-issuer. */
  | { kind: 'dev'; selfUrl: () => string }
  /** An external issuer; client_id must be the audience airlock accepts from it. */
  | { kind: 'oidc'; issuer: string; clientId: string; clientSecret?: string; publicUrl: string };

export const CALLBACK_PATH = '/console/callback';

export class ConsoleOidc {
  private discovered: Promise<client.Configuration> | null = null;

  constructor(private readonly signIn: ConsoleSignIn) {}

  /** The console's own origin as the browser sees it. */
  origin(requestOrigin: string): string {
    return this.signIn.kind === 'oidc' ? new URL(this.signIn.publicUrl).origin : requestOrigin;
  }

  async authorizationUrl(requestOrigin: string): Promise<{ url: URL; verifier: string; state: string }> {
    const config = await this.configuration(requestOrigin);
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: `${this.origin(requestOrigin)}${CALLBACK_PATH}`,
      scope: 'openid profile',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    return { url, verifier, state };
  }

  /** Exchanges the code; returns the ID token for airlock's verifier. */
  async finish(requestOrigin: string, callbackUrl: URL, login: { verifier: string; state: string }): Promise<string> {
    const config = await this.configuration(requestOrigin);
    const current = new URL(`${this.origin(requestOrigin)}${CALLBACK_PATH}${callbackUrl.search}`);
    let tokens: client.TokenEndpointResponse;
    try {
      tokens = await client.authorizationCodeGrant(config, current, { pkceCodeVerifier: login.verifier, expectedState: login.state, idTokenExpected: true });
    } catch (e) {
      throw new AirlockError('AIRLOCK_AUTH_INVALID', `sign-in failed: ${e instanceof Error ? e.message : 'the issuer refused the code'}`);
    }
    if (typeof tokens.id_token !== 'string') throw new AirlockError('AIRLOCK_AUTH_INVALID', 'sign-in failed: the issuer returned no ID token');
    return tokens.id_token;
  }

  private async configuration(requestOrigin: string): Promise<client.Configuration> {
    const s = this.signIn;
    if (s.kind === 'dev') {
      const config = new client.Configuration(
        {
          issuer: DEV_ISSUER,
          authorization_endpoint: `${requestOrigin}/dev-issuer/authorize`,
          // The code goes to this daemon's own address, never to a Host header's.
          token_endpoint: `${s.selfUrl()}/dev-issuer/token`,
          id_token_signing_alg_values_supported: ['EdDSA'],
        },
        AIRLOCK_AUDIENCE,
        { id_token_signed_response_alg: 'EdDSA' },
        client.None(),
      );
      client.allowInsecureRequests(config);
      return config;
    }
    this.discovered ??= client.discovery(new URL(s.issuer), s.clientId, s.clientSecret, s.clientSecret === undefined ? client.None() : undefined);
    this.discovered.catch(() => {
      this.discovered = null;
    });
    return this.discovered;
  }
}
