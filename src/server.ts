// Composition: one node:http server routing to better-auth, GraphQL and the
// health probes. Built from already-open parts, so tests can run it in-process.
import http from 'node:http';
import { toNodeHandler } from 'better-auth/node';
import { createAuth, type Auth } from './auth/auth.ts';
import { createClientIpResolver, prepareAuthRequest } from './auth/request-headers.ts';
import type { Config } from './config.ts';
import { Keyring } from './crypto/keyring.ts';
import type { Database } from './db/database.ts';
import { createGraphQLHandler } from './graphql/yoga.ts';
import type { Logger } from './logger.ts';
import { sendLoginPage } from './web/login-page.ts';

export interface AppDeps {
  config: Config;
  db: Database;
  logger: Logger;
}

export interface App {
  handler: http.RequestListener;
  auth: Auth;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export function createApp({ config, db, logger }: AppDeps): App {
  const auth = createAuth({ config, prisma: db.authTablesClient, logger });
  const authHandler = toNodeHandler(auth);
  const keyring = new Keyring(config.encryption.current, config.encryption.previous);
  const graphql = createGraphQLHandler({ config, db, auth, keyring, logger });
  const clientIp = createClientIpResolver(config.trustedProxies);
  const ownOrigin = new URL(config.auth.baseURL).origin;

  const handler: http.RequestListener = async (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    if (pathname.startsWith('/api/auth/')) {
      prepareAuthRequest(req, clientIp, ownOrigin);
      return authHandler(req, res);
    }
    if (pathname === '/graphql') return graphql(req, res);
    if (pathname === '/login' && req.method === 'GET') return sendLoginPage(res);
    if (pathname === '/health') return sendJson(res, 200, { status: 'ok' });
    if (pathname === '/ready') {
      try {
        await db.ping();
        return sendJson(res, 200, { status: 'ready' });
      } catch (error) {
        logger.warn({ err: (error as Error).message }, 'readiness check failed');
        return sendJson(res, 503, { status: 'unavailable', reason: 'database not answering' });
      }
    }
    if (pathname === '/' && req.method === 'GET') {
      res.writeHead(302, { location: '/graphql' });
      return res.end();
    }
    return sendJson(res, 404, { error: 'not found' });
  };
  return { handler, auth };
}
