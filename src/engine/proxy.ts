// METHOD /engine/v1/credentials/{credentialId}/alpaca/{path}: one engine
// request forwarded to Alpaca with the credential's keys (contract section 11).
//
// The checks, in the order their errors take precedence, each before anything
// later is done (a refused request reaches Alpaca zero times):
//
//   token      401 UNAUTHENTICATED        (handler.ts, before this module)
//   route      403 ROUTE_NOT_ALLOWED      (handler.ts: exact templates, domain/engine.ts)
//   grant      404 NOT_FOUND              client scope (grants.ts step 1); same body for
//                                         an absent, another client's, revoked or expired one
//   scope      403 INSUFFICIENT_SCOPE
//   body       413 PAYLOAD_TOO_LARGE / 400 BAD_REQUEST   (read before the checks, with
//                                         nothing open; judged here)
//   rate limit 429 TOO_MANY_REQUESTS      a point taken in the shared store
//   credential 409 CREDENTIAL_INACTIVE / CREDENTIAL_NOT_VERIFIED / 404   (owner's scope,
//   + event                               step 2: grant row locked, credential checked,
//                                         ENGINE_REQUEST inserted, one transaction); a
//                                         refusal here gives the rate-limit point back;
//                                         if the event cannot be written, nothing goes out
//   forward    with NO transaction open; Alpaca's answer streams back as it arrives.
//
// No database connection is held while Alpaca answers: the steps above are
// short transactions that have all committed before the forward starts, and
// nothing is written after it (so, unlike verifyCredential, there is no late
// transaction to open). A timed-out write is never retried: its fate is
// unknown, and the 504 says how to find out.
import type http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { AlpacaClient } from '../brokers/alpaca.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import type { AlpacaRoute } from '../domain/engine.ts';
import { scopesAllow } from '../domain/engine.ts';
import type { RequestOrigin } from '../services/credential-events.ts';
import type { BodyRead } from './body.ts';
import { type EngineError, engineErrors } from './errors.ts';
import { findGrant, type Refusal, recordEngineRequest } from './grants.ts';
import type { EngineRateLimiter } from './rate-limit.ts';

/** Largest body forwarded (contract section 11). */
export const ENGINE_BODY_LIMIT = 16 * 1024;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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

  const grant = UUID.test(credentialId) ? await findGrant(db, clientId, credentialId) : null;
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
