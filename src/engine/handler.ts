// The engine API (contract section 11), a second HTTP surface beside GraphQL:
// routing, the bearer-token check, errors, one log line and the telemetry of
// each request. src/server.ts only mounts it.
//
//   GET  /.well-known/oauth-authorization-server       RFC 8414 metadata (token-endpoint.ts)
//   POST /engine/v1/oauth/token                         client credentials (token-endpoint.ts)
//   GET  /engine/v1/grants                              the client's active grants (grants.ts)
//   *    /engine/v1/credentials/{id}/alpaca/{path}      the proxy (proxy.ts)
//
// Bearer-only: a token is never ambient (no cookie), so there is no CSRF or
// origin check here, and the Fetch-Metadata headers Node's fetch adds
// (sec-fetch-mode...) mean nothing. Routing reads the path exactly as sent:
// dot segments, percent-encoding and empty segments anywhere in it are
// refused, never normalised (see domain/engine.ts).
import type http from 'node:http';
import type { ClientIpResolver } from '../auth/request-headers.ts';
import type { AlpacaClient } from '../brokers/alpaca.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
import { eventClientIp, eventUserAgent } from '../domain/credential-events.ts';
import { type AlpacaRoute, matchAlpacaRoute, plainSegments } from '../domain/engine.ts';
import { ServiceUnavailableError } from '../domain/errors.ts';
import { describeError, type Logger } from '../logger.ts';
import type { EngineCall, Telemetry } from '../telemetry/telemetry.ts';
import { readBody } from './body.ts';
import { checkToken } from './clients.ts';
import { EngineError, engineErrors, sendEngineError, sendJson } from './errors.ts';
import { listClientGrants } from './grants.ts';
import { ENGINE_BODY_LIMIT, proxyRequest } from './proxy.ts';
import type { EngineRateLimiter, TokenAttemptLimiter } from './rate-limit.ts';
import { authorizationServerMetadata, handleTokenRequest, METADATA_PATH, TOKEN_PATH } from './token-endpoint.ts';

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

export interface EngineHandler {
  /** Whether a request belongs to the engine API (by its path as sent, or as normalised). */
  handles(rawPath: string, pathname: string): boolean;
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
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

export function createEngineHandler(deps: EngineDeps): EngineHandler {
  const { db, logger, telemetry } = deps;
  const log = logger.child({ component: 'engine' });
  const prisma = db.authTablesClient;

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
    handles: (rawPath, pathname) =>
      rawPath.startsWith('/engine/') || pathname.startsWith('/engine/') || pathname === METADATA_PATH,
    handle: async (req, res) => {
      const rawPath = (req.url ?? '/').split('?')[0];
      if (rawPath === METADATA_PATH) {
        if (req.method !== 'GET') return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' });
        return sendJson(res, 200, authorizationServerMetadata(deps.baseURL));
      }
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
