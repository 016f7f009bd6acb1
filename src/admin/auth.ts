import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import type { KubeApi } from '../k8s/api.js';

/** Why a token was refused; `forbidden` means a valid token of a subject that is not allowed. */
export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface VerifiedToken {
  subject: string;
}

export interface TokenVerifier {
  verify(token: string): Promise<VerifiedToken>;
}

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256'];
const JWKS_REFRESH_MIN_MS = 30_000;

/**
 * Verifies Kubernetes service-account tokens (from `kubectl create token … --audience …`) against the cluster's
 * issuer keys. Keys come from `jwksUri` when configured, else from the API server's own `/openid/v1/jwks`, read
 * with the sidecar's credentials and refreshed when a token names an unknown key.
 */
export function createTokenVerifier(o: {
  api?: KubeApi;
  audience: string;
  issuer?: string;
  jwksUri?: string;
  /** Fixed keys instead of the API server's (tests). */
  jwks?: JSONWebKeySet;
  /** Refuse tokens issued longer ago than this, whatever their expiry. */
  maxTokenAgeSeconds?: number;
  now?: () => Date;
}): TokenVerifier {
  let issuer = o.issuer || undefined;
  const fixed = o.jwks ? createLocalJWKSet(o.jwks) : o.jwksUri ? createRemoteJWKSet(new URL(o.jwksUri)) : undefined;
  let keys: JWTVerifyGetKey | undefined = fixed;
  let fetchedAt = 0;

  async function loadFromApiServer(force: boolean): Promise<JWTVerifyGetKey> {
    if (keys && !force) return keys;
    if (keys && Date.now() - fetchedAt < JWKS_REFRESH_MIN_MS) return keys;
    if (!o.api) throw new TypeError('a token verifier without fixed keys needs an API client');
    if (!issuer) {
      const discovery = await o.api.request<{ issuer: string }>('GET', '/.well-known/openid-configuration');
      issuer = discovery.issuer;
    }
    const jwks = await o.api.request<JSONWebKeySet>('GET', '/openid/v1/jwks', { accept: 'application/jwk-set+json' });
    keys = createLocalJWKSet(jwks);
    fetchedAt = Date.now();
    return keys;
  }

  async function attempt(resolver: JWTVerifyGetKey, token: string): Promise<VerifiedToken> {
    const { payload } = await jwtVerify(token, resolver, {
      audience: o.audience,
      ...(issuer ? { issuer } : {}),
      algorithms: ALGORITHMS,
      requiredClaims: ['exp', 'iat', 'sub'],
      maxTokenAge: o.maxTokenAgeSeconds ?? 3600,
      ...(o.now ? { currentDate: o.now() } : {}),
    });
    if (!payload.sub) throw new AuthError(401, 'token has no subject');
    return { subject: payload.sub };
  }

  return {
    async verify(token: string): Promise<VerifiedToken> {
      try {
        const resolver = fixed ?? (await loadFromApiServer(false));
        try {
          return await attempt(resolver, token);
        } catch (err) {
          if (!(err instanceof joseErrors.JWKSNoMatchingKey) || fixed) throw err;
          return await attempt(await loadFromApiServer(true), token);
        }
      } catch (err) {
        if (err instanceof AuthError) throw err;
        if (err instanceof joseErrors.JOSEError) throw new AuthError(401, describeJoseError(err));
        throw err;
      }
    },
  };
}

function describeJoseError(err: InstanceType<typeof joseErrors.JOSEError>): string {
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return 'token expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const { claim, reason } = err as InstanceType<typeof joseErrors.JWTClaimValidationFailed>;
      return reason === 'missing' ? `token has no '${claim}' claim` : `token claim '${claim}' is not valid here`;
    }
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'token is not signed by the cluster issuer';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'token algorithm is not allowed';
    default:
      return 'token is not valid';
  }
}

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}
