// OAuth 2.0 for engine clients: the client-credentials grant (RFC 6749 4.4)
// at POST /engine/v1/oauth/token, and the authorization-server metadata
// (RFC 8414) at GET /.well-known/oauth-authorization-server.
//
// Hand-written (with clients.ts) rather than with @better-auth/oauth-provider,
// which installs with our better-auth: it creates clients only for a
// signed-in user, binds each client to one authentication method (we accept
// both Basic and form fields for every client), and stores client secrets
// hashed only when its JWT plugin (a signing-key table and two more endpoints)
// is on, encrypted otherwise. It has no cap on a client's live tokens, and a
// token check is its introspection (three queries), which cannot join the
// engine API's one statement per request (src/engine/admission.ts).
import type http from 'node:http';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { BODY_DEADLINE_MS, readBody } from '../http/body.ts';
import { sendJson } from '../http/json.ts';
import { authenticateClient, issueToken } from './clients.ts';
import type { TokenAttemptLimiter } from './rate-limit.ts';

export const TOKEN_PATH = '/engine/v1/oauth/token';
export const METADATA_PATH = '/.well-known/oauth-authorization-server';

/** A token request is a few form fields. */
const TOKEN_BODY_LIMIT = 4096;

export interface TokenEndpointDeps {
  prisma: PrismaClient;
  tokenTtlSeconds: number;
  /** ENGINE_TOKENS_PER_CLIENT: a new token beyond it ends the client's oldest. */
  tokensPerClient: number;
  /** Failed client authentications (rate-limit.ts). */
  attempts: TokenAttemptLimiter;
  /** The caller's address by the TRUST_PROXY rules. */
  clientIp: string;
}

/** RFC 8414 metadata: this server (its public base URL) is the issuer; client credentials is its one grant. */
export function authorizationServerMetadata(baseURL: string): Record<string, unknown> {
  const issuer = baseURL.replace(/\/+$/, '');
  return {
    issuer,
    token_endpoint: `${issuer}${TOKEN_PATH}`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    // No authorization endpoint: no response type is supported.
    response_types_supported: [],
  };
}

interface OAuthError {
  status: number;
  // slow_down: the token endpoint's "retry later" (RFC 8628 3.5, in IANA's OAuth error registry).
  error: 'invalid_request' | 'invalid_client' | 'unsupported_grant_type' | 'slow_down';
  description?: string;
  /** RFC 6749 5.2: a client that tried HTTP Basic gets a challenge. */
  basic?: boolean;
  retryAfter?: number;
}

function sendOAuthError(res: http.ServerResponse, { status, error, description, basic, retryAfter }: OAuthError): void {
  sendJson(res, status, description ? { error, error_description: description } : { error }, {
    pragma: 'no-cache',
    ...(basic ? { 'www-authenticate': 'Basic realm="engine"' } : {}),
    ...(retryAfter ? { 'retry-after': String(retryAfter) } : {}),
  });
}

/** application/x-www-form-urlencoded decoding of one value ("+" is a space). */
function formDecode(value: string): string | null {
  try {
    return decodeURIComponent(value.replaceAll('+', ' '));
  } catch {
    return null;
  }
}

/**
 * client_secret_basic (RFC 6749 2.3.1): base64 of the form-encoded id, a
 * colon, the form-encoded secret. Null when the header is not Basic at all,
 * 'malformed' when it is but cannot be read.
 */
export function basicCredentials(header: string | undefined): { id: string; secret: string } | 'malformed' | null {
  const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header ?? '');
  if (!match) return header && /^Basic\b/i.test(header) ? 'malformed' : null;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  const id = formDecode(decoded.slice(0, colon));
  const secret = formDecode(decoded.slice(colon + 1));
  return id && secret ? { id, secret } : 'malformed';
}

/** Answers one request to the token endpoint. */
export async function handleTokenRequest(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  deps: TokenEndpointDeps,
): Promise<void> {
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return sendOAuthError(res, { status: 405, error: 'invalid_request', description: 'Use POST.' });
  }
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) {
    return sendOAuthError(res, {
      status: 400,
      error: 'invalid_request',
      description: 'Send the parameters as application/x-www-form-urlencoded.',
    });
  }
  const body = await readBody(req, TOKEN_BODY_LIMIT, { deadlineMs: BODY_DEADLINE_MS });
  // The client went away mid-body: nobody to answer.
  if (body.kind === 'aborted') return;
  if (body.kind === 'timeout') {
    res.setHeader('connection', 'close');
    return sendOAuthError(res, {
      status: 408,
      error: 'invalid_request',
      description: 'The body did not arrive in time.',
    });
  }
  if (body.kind === 'too-large') {
    res.setHeader('connection', 'close');
    return sendOAuthError(res, { status: 413, error: 'invalid_request', description: 'The body is too large.' });
  }
  if (body.kind === 'invalid-length') {
    return sendOAuthError(res, { status: 400, error: 'invalid_request', description: 'Invalid Content-Length.' });
  }
  const form = new URLSearchParams(body.kind === 'read' ? body.bytes.toString('utf8') : '');
  const names = [...form.keys()];
  if (new Set(names).size !== names.length) {
    return sendOAuthError(res, { status: 400, error: 'invalid_request', description: 'A parameter is repeated.' });
  }
  const grantType = form.get('grant_type');
  if (!grantType) {
    return sendOAuthError(res, { status: 400, error: 'invalid_request', description: 'grant_type is missing.' });
  }
  if (grantType !== 'client_credentials') return sendOAuthError(res, { status: 400, error: 'unsupported_grant_type' });

  const basic = basicCredentials(req.headers.authorization);
  const posted = form.has('client_secret') ? { id: form.get('client_id'), secret: form.get('client_secret') } : null;
  if (basic && posted) {
    return sendOAuthError(res, {
      status: 400,
      error: 'invalid_request',
      description: 'Authenticate the client one way: HTTP Basic or form fields, not both.',
    });
  }
  const usedBasic = basic !== null;
  const credentials = basic === 'malformed' ? null : (basic ?? posted);
  if (!credentials?.id || !credentials.secret) {
    return sendOAuthError(res, { status: 401, error: 'invalid_client', basic: usedBasic });
  }
  // Counted as a failure before the secret is checked, so a burst cannot outrun the count.
  const wait = await deps.attempts.take('engine-token', deps.clientIp, credentials.id);
  if (wait !== null) {
    return sendOAuthError(res, {
      status: 429,
      error: 'slow_down',
      description: `Too many failed client authentications; try again in ${wait} s.`,
      retryAfter: wait,
    });
  }
  if (!(await authenticateClient(deps.prisma, credentials.id, credentials.secret))) {
    return sendOAuthError(res, { status: 401, error: 'invalid_client', basic: usedBasic });
  }
  await deps.attempts.succeeded('engine-token', deps.clientIp, credentials.id);
  const token = await issueToken(deps.prisma, credentials.id, {
    ttlSeconds: deps.tokenTtlSeconds,
    maxLive: deps.tokensPerClient,
  });
  // RFC 6749 5.1: tokens are never cached.
  sendJson(
    res,
    200,
    { access_token: token.accessToken, token_type: 'Bearer', expires_in: token.expiresIn },
    { pragma: 'no-cache' },
  );
}
