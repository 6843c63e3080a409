// The engine API, a second HTTP surface beside GraphQL: the bearer-token
// check, where each request goes, its errors, one log line and the telemetry
// of each request. src/server.ts mounts it in its route table.
//
//   GET  /.well-known/oauth-authorization-server       RFC 8414 metadata (token-endpoint.ts)
//   POST /engine/v1/oauth/token                         client credentials (token-endpoint.ts)
//   GET  /engine/v1/grants                              the client's active grants (grant-list.ts)
//   *    /engine/v1/credentials/{id}/alpaca/{path}      the proxy (proxy.ts)
//
// Bearer-only: a token is never ambient (no cookie), so there is no CSRF or
// origin check here. Routing reads the path exactly as sent: dot segments,
// percent-encoding and empty segments anywhere in it are refused, never
// normalised (src/domain/engine-routes.ts). The request's way through the
// checks: docs/architecture/engine-proxy.md.
import type http from 'node:http';
import type { ClientIpResolver } from '../auth/request-headers.ts';
import type { AlpacaClient } from '../brokers/alpaca.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
import { eventClientIp, eventUserAgent } from '../domain/credential-events.ts';
import { type AlpacaRoute, matchAlpacaRoute, plainSegments } from '../domain/engine-routes.ts';
import { ServiceUnavailableError } from '../domain/errors.ts';
import { readBody } from '../http/body.ts';
import { sendError, sendJson } from '../http/json.ts';
import type { Handler } from '../http/routes.ts';
import { describeError, type Logger } from '../logger.ts';
import type { EngineCall, Telemetry } from '../telemetry/telemetry.ts';
import { checkToken } from './clients.ts';
import { EngineError, engineErrors, sendEngineError } from './errors.ts';
import { listClientGrants } from './grant-list.ts';
import { ENGINE_BODY_LIMIT, proxyRequest } from './proxy.ts';
import type { EngineRateLimiter, TokenAttemptLimiter } from './rate-limit.ts';
import { authorizationServerMetadata, handleTokenRequest, TOKEN_PATH } from './token-endpoint.ts';

export interface EngineDeps {
  db: Database;
  keyring: Keyring;
  alpaca: AlpacaClient;
  limiter: EngineRateLimiter;
  /** Failed client authentications at the token endpoint. */
  tokenAttempts: TokenAttemptLimiter;
  logger: Logger;
  telemetry: Pick<Telemetry, 'engineRequest'>;
  clientIp: ClientIpResolver;
  /** ENGINE_TOKEN_TTL_SECONDS. */
  tokenTtlSeconds: number;
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

type Target =
  | { kind: 'grants' }
  | { kind: 'alpaca'; credentialId: string; route: AlpacaRoute }
  | { kind: 'refused'; error: EngineError };

/** Where an authenticated request goes, from its path as sent. */
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
  return { kind: 'refused', error: engineErrors.noSuchEndpoint() };
}

export function createEngineApi(deps: EngineDeps): EngineApi {
  const { db, logger, telemetry } = deps;
  const log = logger.child({ component: 'engine' });
  const prisma = db.unscopedClient;

  /** One API request, from the token check to the last byte of the answer. */
  async function serve(req: http.IncomingMessage, res: http.ServerResponse, observed: EngineCall): Promise<void> {
    const started = performance.now();
    const [rawPath = '/', ...rest] = (req.url ?? '/').split('?');
    const method = req.method ?? '';
    const line: Record<string, unknown> = { clientId: null, method, request: null };
    let outcome = 'forwarded';
    let status = 500;
    try {
      const token = bearerToken(single(req.headers.authorization));
      const owner = token ? await checkToken(prisma, token) : null;
      if (!owner) throw engineErrors.unauthenticated();
      line.clientId = owner.clientId;
      observed.client(owner.clientId);

      const to = target(method, rawPath);
      if (to.kind === 'refused') throw to.error;
      if (to.kind === 'grants') {
        const { grants, hasMore } = await listClientGrants(db, owner.clientId);
        status = 200;
        outcome = 'ok';
        return sendJson(res, 200, { grants, hasMore });
      }
      line.request = to.route.request;
      observed.request(to.route.request);
      // Read with nothing open; judged in its turn (proxy.ts).
      const body = await readBody(req, ENGINE_BODY_LIMIT);
      const forwarded = await proxyRequest(
        deps,
        {
          clientId: owner.clientId,
          credentialId: to.credentialId,
          route: to.route,
          query: rest.join('?'),
          body,
          contentType: single(req.headers['content-type']),
          accept: single(req.headers.accept),
          origin: {
            clientIp: eventClientIp(deps.clientIp(req)),
            userAgent: eventUserAgent(single(req.headers['user-agent'])),
          },
        },
        res,
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
        // A body left unread (too large, or refused before it was read) must not be taken for the next request.
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
          attempts: deps.tokenAttempts,
          clientIp: deps.clientIp(req),
        });
      }
      return telemetry.engineRequest((observed) => serve(req, res, observed));
    },
  };
}
