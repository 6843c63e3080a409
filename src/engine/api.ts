// The engine API, a second HTTP surface beside GraphQL: the bearer-token
// check, where each request goes, its errors, one log line and the telemetry
// of each request. src/server.ts mounts it in its route table.
//
//   GET  /.well-known/oauth-authorization-server       RFC 8414 metadata (token-endpoint.ts)
//   POST /engine/v1/oauth/token                         client credentials (token-endpoint.ts)
//   GET  /engine/v1/grants                              the client's active grants (grant-list.ts)
//   *    /engine/v1/credentials/{id}/alpaca/{path}      the proxy (proxy.ts)
//   POST /engine/v1/credentials/{id}/orders:check       an order's dry run (proxy.ts)
//
// Bearer-only: a token is never ambient (no cookie), so there is no CSRF or
// origin check here. Routing reads the path exactly as sent: dot segments,
// percent-encoding and empty segments anywhere in it are refused, never
// normalised (src/domain/engine-routes.ts). A credential id is one id however
// it is cased: everything is keyed on its lower-case form.
//
// What is checked, in the order its refusal takes precedence: the token (401),
// the route (403, 404), the body (408, 413, 400), then, in one statement, the
// grant (404), its scope (403), the credential (409) and the rate limit (429),
// then the guardrails (403, 503). The first three need no database: a request
// refused there has its token checked all the same, so a bad token always
// answers 401. The request's way through the checks:
// docs/architecture/engine-proxy.md.
import type http from 'node:http';
import type { ClientIpResolver } from '../auth/request-headers.ts';
import type { AlpacaClient } from '../brokers/alpaca.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
import { eventClientIp, eventUserAgent } from '../domain/credential-events.ts';
import { type AlpacaRoute, matchAlpacaRoute, plainSegments } from '../domain/engine-routes.ts';
import { ServiceUnavailableError } from '../domain/errors.ts';
import { canonicalUuid } from '../domain/ids.ts';
import { BODY_DEADLINE_MS, type BodyRead, readBody } from '../http/body.ts';
import { sendError, sendJson } from '../http/json.ts';
import type { Handler } from '../http/routes.ts';
import { describeError, type Logger } from '../logger.ts';
import type { EngineCall, Telemetry } from '../telemetry/telemetry.ts';
import type { EngineCaller } from './admission.ts';
import { accessTokenHash, checkToken } from './clients.ts';
import { EngineError, engineErrors, sendEngineError } from './errors.ts';
import { GRANTS_LIST_RATE_LIMIT, listClientGrants } from './grant-list.ts';
import type { AssetCache } from './market-facts.ts';
import { checkOrderRequest, ENGINE_BODY_LIMIT, proxyRequest } from './proxy.ts';
import type { TokenAttemptLimiter } from './rate-limit.ts';
import { authorizationServerMetadata, handleTokenRequest, TOKEN_PATH } from './token-endpoint.ts';

export interface EngineDeps {
  db: Database;
  keyring: Keyring;
  alpaca: AlpacaClient;
  /** Alpaca's assets, cached for the guardrail checks. */
  assets: AssetCache;
  /** ENGINE_RATE_LIMIT: forwarded requests per credential per minute. */
  rateLimit: number;
  /** Failed client authentications at the token endpoint. */
  tokenAttempts: TokenAttemptLimiter;
  logger: Logger;
  telemetry: Pick<Telemetry, 'engineRequest'>;
  clientIp: ClientIpResolver;
  /** ENGINE_TOKEN_TTL_SECONDS. */
  tokenTtlSeconds: number;
  /** ENGINE_TOKENS_PER_CLIENT. */
  tokensPerClient: number;
  /** BROKER_TIMEOUT_MS, for the 504's message. */
  timeoutMs: number;
  /** The public base URL: the issuer of the metadata. */
  baseURL: string;
}

/** Every path of the engine API but the metadata starts with this. */
export const ENGINE_PATH_PREFIX = '/engine/';

export interface EngineApi {
  /** GET /.well-known/oauth-authorization-server (METADATA_PATH). */
  metadata: Handler;
  /** Every request whose path starts with ENGINE_PATH_PREFIX: the token endpoint and the API. */
  api: Handler;
}

const single = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** The token of `Authorization: Bearer <token>` (RFC 6750 2.1), or null. */
export function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header ?? '');
  return match?.[1] ?? null;
}

/** The dry run of an order: beside the Alpaca paths, never forwarded. */
const ORDER_CHECK = 'orders:check';

type Target =
  | { kind: 'grants' }
  | { kind: 'alpaca'; credentialId: string; route: AlpacaRoute }
  | { kind: 'check'; credentialId: string }
  | { kind: 'refused'; error: EngineError };

/** Where a request goes, from its path as sent. */
function target(method: string, rawPath: string): Target {
  const [engine, version, first, credentialId, third, ...alpacaPath] = plainSegments(rawPath) ?? [];
  if (engine !== 'engine' || version !== 'v1') return { kind: 'refused', error: engineErrors.routeNotAllowed() };
  if (first === 'grants' && credentialId === undefined) {
    return method === 'GET' ? { kind: 'grants' } : { kind: 'refused', error: engineErrors.routeNotAllowed() };
  }
  if (first === 'credentials' && credentialId !== undefined && third === 'alpaca') {
    const route = matchAlpacaRoute(method, alpacaPath);
    return route ? { kind: 'alpaca', credentialId, route } : { kind: 'refused', error: engineErrors.routeNotAllowed() };
  }
  if (first === 'credentials' && credentialId !== undefined && third === ORDER_CHECK && alpacaPath.length === 0) {
    return method === 'POST'
      ? { kind: 'check', credentialId }
      : { kind: 'refused', error: engineErrors.routeNotAllowed() };
  }
  return { kind: 'refused', error: engineErrors.noSuchEndpoint() };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A body fit to forward for this method: JSON for POST and PATCH, none for GET and DELETE. */
export function judgeBody(method: string, body: BodyRead): EngineError | null {
  switch (body.kind) {
    case 'too-large':
      return engineErrors.payloadTooLarge(ENGINE_BODY_LIMIT);
    case 'invalid-length':
      return engineErrors.badRequest('The Content-Length header is invalid.');
    case 'timeout':
      return engineErrors.requestTimeout(BODY_DEADLINE_MS / 1000);
    default:
      break;
  }
  const takesBody = method === 'POST' || method === 'PATCH';
  if (!takesBody) return body.kind === 'none' ? null : engineErrors.badRequest('This request takes no body.');
  if (body.kind !== 'read') return engineErrors.badRequest('This request needs a JSON body.');
  try {
    JSON.parse(utf8.decode(body.bytes));
    return null;
  } catch {
    return engineErrors.badRequest('The body is not JSON.');
  }
}

export function createEngineApi(deps: EngineDeps): EngineApi {
  const { db, logger, telemetry } = deps;
  const log = logger.child({ component: 'engine' });
  const prisma = db.unscopedClient;
  const proxyDeps = {
    db,
    keyring: deps.keyring,
    alpaca: deps.alpaca,
    assets: deps.assets,
    rateLimit: deps.rateLimit,
    timeoutMs: deps.timeoutMs,
    logger: log,
  };

  /** One API request, from the token check to the last byte of the answer. */
  async function serve(req: http.IncomingMessage, res: http.ServerResponse, observed: EngineCall): Promise<void> {
    const started = performance.now();
    const [rawPath = '/', ...rest] = (req.url ?? '/').split('?');
    const method = req.method ?? '';
    const line: Record<string, unknown> = { clientId: null, method, request: null };
    let outcome = 'forwarded';
    let status = 500;
    const report = {
      clientId: (clientId: string) => {
        line.clientId = clientId;
        observed.client(clientId);
      },
      refused: (rule: string) => {
        line.rule = rule;
        observed.refused(rule);
      },
    };
    try {
      const token = bearerToken(single(req.headers.authorization));
      const tokenHash = token ? accessTokenHash(token) : null;
      if (!token || !tokenHash) throw engineErrors.unauthenticated();
      // Refused before the database is asked: the token is checked all the same, so a bad one answers 401.
      const refuse = async (error: EngineError): Promise<never> => {
        const owner = await checkToken(prisma, token);
        if (!owner) throw engineErrors.unauthenticated();
        report.clientId(owner.clientId);
        throw error;
      };

      const to = target(method, rawPath);
      if (to.kind === 'refused') return await refuse(to.error);
      if (to.kind === 'grants') {
        const list = await listClientGrants(db, tokenHash);
        if (list.outcome === 'unauthenticated') throw engineErrors.unauthenticated();
        report.clientId(list.clientId);
        if (list.outcome === 'rate-limited') {
          throw engineErrors.tooManyRequests(
            list.retryAfter,
            `At most ${GRANTS_LIST_RATE_LIMIT} grant listings per client per minute`,
          );
        }
        status = 200;
        outcome = 'ok';
        return sendJson(res, 200, { grants: list.grants, hasMore: list.hasMore });
      }
      const request = to.kind === 'check' ? `POST /${ORDER_CHECK}` : to.route.request;
      line.request = request;
      observed.request(request);
      const credentialId = canonicalUuid(to.credentialId);
      if (!credentialId) return await refuse(engineErrors.notFound());
      line.credentialId = credentialId;

      // Read with nothing open, within BODY_DEADLINE_MS of the headers.
      const body = await readBody(req, ENGINE_BODY_LIMIT, { deadlineMs: BODY_DEADLINE_MS });
      if (body.kind === 'aborted') {
        // Nobody to answer: logged as what it is, not as a failure of ours.
        outcome = 'CLIENT_CLOSED';
        status = 499;
        return;
      }
      const badBody = judgeBody(method, body);
      if (badBody) return await refuse(badBody);
      const bytes = body.kind === 'read' ? body.bytes : null;

      const caller: EngineCaller = {
        tokenHash,
        credentialId,
        scope: to.kind === 'check' ? 'TRADE' : to.route.scope,
        request: to.kind === 'check' ? 'POST /v2/orders' : to.route.request,
        origin: {
          clientIp: eventClientIp(deps.clientIp(req)),
          userAgent: eventUserAgent(single(req.headers['user-agent'])),
        },
      };
      if (to.kind === 'check') {
        const answer = await checkOrderRequest(proxyDeps, caller, bytes ?? Buffer.alloc(0), report);
        status = 200;
        outcome = 'ok';
        return sendJson(res, 200, answer);
      }
      const forwarded = await proxyRequest(
        proxyDeps,
        {
          caller,
          route: to.route,
          query: rest.join('?'),
          body: bytes,
          contentType: single(req.headers['content-type']),
          accept: single(req.headers.accept),
        },
        res,
        report,
      );
      status = forwarded.status;
      line.requestId = forwarded.requestId;
    } catch (thrown) {
      const error = asEngineError(thrown);
      outcome = error.code;
      status = error.status;
      if (res.headersSent) {
        res.destroy();
      } else {
        // A body left unread (too large, too slow, or refused before it was read) must not be taken for the next request.
        if (!req.complete) res.setHeader('connection', 'close');
        sendEngineError(res, error);
      }
    } finally {
      observed.status(status);
      observed.outcome(outcome);
      // One line per engine request: never a token, key, query or body.
      log.info({ ...line, status, outcome, durationMs: Math.round(performance.now() - started) }, 'engine request');
    }
  }

  function asEngineError(thrown: unknown): EngineError {
    if (thrown instanceof EngineError) return thrown;
    if (isDatabaseUnavailable(thrown)) {
      log.warn({ error: describeError(thrown) }, 'database unavailable during an engine request');
      return engineErrors.unavailable(ServiceUnavailableError.retryAfterSeconds);
    }
    log.error({ error: describeError(thrown) }, 'unexpected error in an engine request');
    return engineErrors.internal();
  }

  return {
    metadata: (req, res) => {
      if (req.method !== 'GET') {
        return sendError(res, 405, { code: 'METHOD_NOT_ALLOWED', message: 'Use GET.' }, { allow: 'GET' });
      }
      return sendJson(res, 200, authorizationServerMetadata(deps.baseURL));
    },
    api: (req, res) => {
      const rawPath = (req.url ?? '/').split('?')[0];
      if (rawPath === TOKEN_PATH) {
        return handleTokenRequest(req, res, {
          prisma,
          tokenTtlSeconds: deps.tokenTtlSeconds,
          tokensPerClient: deps.tokensPerClient,
          attempts: deps.tokenAttempts,
          clientIp: deps.clientIp(req),
        });
      }
      return telemetry.engineRequest((observed) => serve(req, res, observed));
    },
  };
}
