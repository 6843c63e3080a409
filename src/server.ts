// Composition: the parts of the app built from already-open ones (so tests
// can run it in-process), and the route table of the one node:http server:
// better-auth, the engine API, GraphQL, the login page and the probes.
import type http from 'node:http';
import { toNodeHandler } from 'better-auth/node';
import { AttemptLimiter } from './auth/attempt-limiter.ts';
import { type Auth, createAuth, databaseLimiterFactory, getViewer } from './auth/auth.ts';
import { createClientIpResolver, prepareAuthRequest } from './auth/request-headers.ts';
import { SessionCache, sessionKey } from './auth/session-cache.ts';
import { createAlpacaClient } from './brokers/alpaca.ts';
import type { Config } from './config/load.ts';
import { Keyring } from './crypto/keyring.ts';
import type { Database } from './db/database.ts';
import { isDatabaseUnavailable } from './db/errors.ts';
import { ServiceUnavailableError } from './domain/errors.ts';
import { createEngineApi, ENGINE_PATH_PREFIX } from './engine/api.ts';
import { AssetCache } from './engine/market-facts.ts';
import { TOKEN_ATTEMPT_LIMITS } from './engine/rate-limit.ts';
import { METADATA_PATH } from './engine/token-endpoint.ts';
import { createGraphQLHandler } from './graphql/yoga.ts';
import { declaredLength } from './http/body.ts';
import { createCors } from './http/cors.ts';
import { sendError, sendJson } from './http/json.ts';
import { createRequestLogger } from './http/request-log.ts';
import { createRouter, type Route } from './http/routes.ts';
import { describeError, type Logger } from './logger.ts';
import { VerificationLimiter } from './services/verification-limiter.ts';
import { noTelemetry, type Telemetry } from './telemetry/telemetry.ts';
import { sendLoginPage } from './web/login-page.ts';

export interface AppDeps {
  config: Config;
  db: Database;
  logger: Logger;
  /** Metrics and traces (main.ts); none by default. */
  telemetry?: Telemetry;
}

export interface App {
  handler: http.RequestListener;
  auth: Auth;
}

/** Auth bodies are a few hundred bytes (email, password, name). */
const AUTH_BODY_LIMIT = 16 * 1024;

interface Refusal {
  status: number;
  code: string;
  message: string;
}

/** Refuses auth requests whose body is too big, or of unknown size, before better-auth buffers it. */
function authBodyRefusal(req: http.IncomingMessage): Refusal | undefined {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return undefined;
  switch (declaredLength(req.headers['content-length'], AUTH_BODY_LIMIT)) {
    case 'absent':
      return req.headers['transfer-encoding']
        ? { status: 411, code: 'LENGTH_REQUIRED', message: 'Send a Content-Length.' }
        : undefined;
    case 'invalid':
      return { status: 400, code: 'BAD_REQUEST', message: 'Invalid Content-Length.' };
    case 'too-large':
      return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'Request body too large.' };
    case 'fits':
      return undefined;
  }
}

/**
 * A signed-in POST to the auth API may end sessions (sign-out, revocations,
 * password change): once it has run, the cache forgets all of that user's
 * sessions, whichever credential (cookie or bearer) they were cached under.
 */
async function forgetSessionsAfterChange(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  auth: Auth,
  sessions: SessionCache,
): Promise<void> {
  if (req.method !== 'POST') return;
  const key = sessionKey(req.headers.authorization ?? null, req.headers.cookie ?? null);
  if (!key) return;
  const headers = new Headers();
  for (const name of ['authorization', 'cookie'] as const) {
    const value = req.headers[name];
    if (value) headers.set(name, value);
  }
  const viewer = await getViewer(auth, headers, sessions).catch(() => null);
  if (viewer) res.once('finish', () => sessions.forgetUser(viewer.id));
}

/**
 * The session cache, kept true by the database's announcements of ended
 * sessions (any instance's sign-outs): it serves only while they are heard.
 * The listener closes with the database.
 */
function createSessionCache(ttlMs: number, db: Database): SessionCache {
  if (ttlMs === 0) return new SessionCache(0);
  let sessions: SessionCache | undefined;
  const revocations = db.watchSessionRevocations({
    onRevoked: (userId) => sessions?.forgetUser(userId),
    onReset: () => sessions?.clear(),
  });
  sessions = new SessionCache(ttlMs, { fresh: revocations.fresh });
  return sessions;
}

export function createApp({ config, db, logger, telemetry = noTelemetry }: AppDeps): App {
  const auth = createAuth({ config, prisma: db.unscopedClient, logger });
  const authHandler = toNodeHandler(auth);
  const keyring = new Keyring(config.encryption.current, config.encryption.previous);
  const sessions = createSessionCache(config.auth.sessionCacheTtlMs, db);
  const alpaca = createAlpacaClient({ ...config.broker.alpaca, timeoutMs: config.broker.timeoutMs, logger, telemetry });
  const verification = {
    alpaca,
    // Counters only, in the shared store (not user data): the resolvers get the limiter, never the client.
    limiter: new VerificationLimiter(databaseLimiterFactory(db.unscopedClient)),
  };
  const clientIp = createClientIpResolver(config.trustedProxies);
  const graphql = createGraphQLHandler({
    config,
    db,
    auth,
    keyring,
    sessions,
    logger,
    verification,
    clientIp,
    telemetryPlugins: telemetry.graphqlPlugins,
  });
  // The trading-engine API: its own routing below its prefix, tokens and errors.
  const engine = createEngineApi({
    db,
    keyring,
    alpaca,
    assets: new AssetCache(),
    rateLimit: config.engine.rateLimitPerMinute,
    tokenAttempts: new AttemptLimiter(databaseLimiterFactory(db.unscopedClient), TOKEN_ATTEMPT_LIMITS),
    logger,
    telemetry,
    clientIp,
    tokenTtlSeconds: config.engine.tokenTtlSeconds,
    tokensPerClient: config.engine.tokensPerClient,
    timeoutMs: config.broker.timeoutMs,
    baseURL: config.auth.baseURL,
  });
  const ownOrigin = new URL(config.auth.baseURL).origin;
  const cors = createCors(config.auth.trustedOrigins);
  const logRequest = createRequestLogger(logger);
  const { observeHttp } = telemetry;

  const routes: Route[] = [
    {
      path: '/api/auth/',
      prefix: true,
      handler: async (req, res) => {
        const refusal = authBodyRefusal(req);
        if (refusal) return sendError(res, refusal.status, { code: refusal.code, message: refusal.message });
        prepareAuthRequest(req, clientIp, ownOrigin);
        await forgetSessionsAfterChange(req, res, auth, sessions);
        return authHandler(req, res);
      },
    },
    // Also by the path as sent: the engine API refuses dot segments itself.
    { path: ENGINE_PATH_PREFIX, prefix: true, asSent: true, handler: engine.api },
    { path: METADATA_PATH, handler: engine.metadata },
    {
      path: '/graphql',
      handler: (req, res) => {
        // Answers carry account names, hints and client IPs: no cache keeps one, errors included.
        res.setHeader('cache-control', 'no-store');
        return graphql(req, res);
      },
    },
    // The page signs in for GraphiQL and sends the browser there: only served while GraphiQL is.
    ...(config.graphiql
      ? [{ path: '/login', methods: ['GET'], handler: (_req, res) => sendLoginPage(res) } satisfies Route]
      : []),
    { path: '/health', handler: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
    {
      path: '/ready',
      handler: async (_req, res) => {
        try {
          await db.ping();
          return sendJson(res, 200, { status: 'ready' });
        } catch (error) {
          logger.warn({ error: describeError(error) }, 'readiness check failed');
          const reason = isDatabaseUnavailable(error) ? 'database not answering' : 'request transactions fail';
          return sendJson(res, 503, { status: 'unavailable', reason });
        }
      },
    },
    { path: '/', methods: ['GET'], handler: (_req, res) => void res.writeHead(302, { location: '/graphql' }).end() },
  ];
  const route = createRouter(routes);

  const handler: http.RequestListener = async (req, res) => {
    logRequest(req, res);
    observeHttp?.(req, res);
    try {
      if (cors(req, res)) return;
      await route(req, res);
    } catch (error) {
      // Errors better-auth does not answer itself (it rethrows them, see
      // onAPIError in auth.ts), e.g. an unreachable database at sign-in.
      const unavailable = isDatabaseUnavailable(error);
      logger[unavailable ? 'warn' : 'error']({ error: describeError(error) }, 'request failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (unavailable) {
        const retry = ServiceUnavailableError.retryAfterSeconds;
        return sendError(
          res,
          503,
          { code: 'SERVICE_UNAVAILABLE', message: new ServiceUnavailableError().message },
          { 'retry-after': String(retry) },
        );
      }
      sendError(res, 500, { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.' });
    }
  };
  return { handler, auth };
}
