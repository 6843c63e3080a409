// METHOD /engine/v1/credentials/{credentialId}/alpaca/{path}: one engine
// request forwarded to Alpaca with the credential's keys (docs/engines.md).
// The checks run in the order their errors take precedence, each before
// anything later is done, so a refused request reaches Alpaca zero times:
//
//   token 401, route 403 (api.ts) -> grant 404 (client scope) -> scope 403
//   -> body 413/400 -> rate limit 429 -> credential 409/404 + ENGINE_REQUEST
//   event (owner's scope, one transaction) -> forward, with NO transaction open
//
// No database connection is held while Alpaca answers, and nothing is written
// after it; a timed-out write is never retried (its fate is unknown, and the
// 504 says how to find out). Each step explained:
// docs/architecture/engine-proxy.md.
import type http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { AlpacaClient } from '../brokers/alpaca.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import { scopesAllow } from '../domain/engine-grants.ts';
import type { AlpacaRoute } from '../domain/engine-routes.ts';
import { isUuid } from '../domain/ids.ts';
import type { BodyRead } from '../http/body.ts';
import type { RequestOrigin } from '../services/credential-events.ts';
import { findGrant, type Refusal, recordEngineRequest } from './admission.ts';
import { type EngineError, engineErrors } from './errors.ts';
import type { EngineRateLimiter } from './rate-limit.ts';

/** Largest body forwarded (docs/engines.md). */
export const ENGINE_BODY_LIMIT = 16 * 1024;

export interface ProxyDeps {
  db: Database;
  keyring: Keyring;
  alpaca: AlpacaClient;
  limiter: EngineRateLimiter;
  timeoutMs: number;
}

export interface ProxyRequest {
  clientId: string;
  credentialId: string;
  route: AlpacaRoute;
  /** The query string as sent, without "?". */
  query: string;
  body: BodyRead;
  contentType: string | undefined;
  accept: string | undefined;
  origin: RequestOrigin;
}

/** What the handler logs and counts of a forwarded request. */
export interface Forwarded {
  status: number;
  requestId: string | null;
}

const REFUSALS: Record<Refusal, () => EngineError> = {
  'not-found': engineErrors.notFound,
  inactive: engineErrors.credentialInactive,
  'not-verified': engineErrors.credentialNotVerified,
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A body fit to forward for this method: JSON for POST and PATCH, none for GET and DELETE. */
export function judgeBody(method: string, body: BodyRead): EngineError | null {
  if (body.kind === 'too-large') return engineErrors.payloadTooLarge(ENGINE_BODY_LIMIT);
  if (body.kind === 'invalid-length') return engineErrors.badRequest('The Content-Length header is invalid.');
  const takesBody = method === 'POST' || method === 'PATCH';
  if (!takesBody) return body.kind === 'none' ? null : engineErrors.badRequest('This request takes no body.');
  if (body.kind === 'none') return engineErrors.badRequest('This request needs a JSON body.');
  try {
    JSON.parse(utf8.decode(body.bytes));
    return null;
  } catch {
    return engineErrors.badRequest('The body is not JSON.');
  }
}

/**
 * Runs the checks and the forward; resolves once Alpaca's answer has been
 * streamed to `res` (or throws an EngineError before anything was sent).
 */
export async function proxyRequest(
  deps: ProxyDeps,
  request: ProxyRequest,
  res: http.ServerResponse,
): Promise<Forwarded> {
  const { db, keyring, alpaca, limiter } = deps;
  const { clientId, credentialId, route } = request;

  const grant = isUuid(credentialId) ? await findGrant(db, clientId, credentialId) : null;
  if (!grant) throw engineErrors.notFound();
  if (!scopesAllow(grant.scopes, route.scope)) throw engineErrors.insufficientScope(route.scope);
  const badBody = judgeBody(route.method, request.body);
  if (badBody) throw badBody;

  const retryAfter = await limiter.take(credentialId);
  if (retryAfter !== null) throw engineErrors.tooManyRequests(limiter.max, retryAfter);
  const admitted = await recordEngineRequest(db, keyring, grant, credentialId, {
    clientId,
    request: route.request,
    origin: request.origin,
  });
  if (!admitted.ok) {
    // Inactive, not verified, or revoked since step 1: not forwarded, and the
    // point goes back (a refused request costs the credential nothing).
    await limiter.giveBack(credentialId);
    throw REFUSALS[admitted.refusal]();
  }

  const answer = await alpaca.forward({
    environment: admitted.environment,
    keys: admitted.keys,
    method: route.method,
    path: route.path,
    query: request.query,
    contentType: request.contentType,
    accept: request.accept,
    body: request.body.kind === 'read' ? request.body.bytes : undefined,
    request: route.request,
  });
  if (answer.kind === 'timeout') throw engineErrors.brokerTimeout(deps.timeoutMs);
  if (answer.kind === 'connection') throw engineErrors.brokerUnreachable();

  res.writeHead(answer.status, answer.headers);
  if (!answer.body) {
    res.end();
  } else {
    // Piped, never buffered whole. If Alpaca stalls past the deadline or the
    // engine goes away, both ends are closed: the status is already sent.
    await pipeline(Readable.fromWeb(answer.body as NodeReadableStream), res).catch(() => {
      res.destroy();
    });
  }
  return { status: answer.status, requestId: answer.requestId };
}
