// Composition: one node:http server routing to the health probes (and, as the
// API grows, to better-auth and GraphQL).
import http from 'node:http';
import type { Config } from './config.ts';
import type { Database } from './db/database.ts';
import type { Logger } from './logger.ts';

export interface AppDeps {
  config: Config;
  db: Database;
  logger: Logger;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export function createRequestHandler({ db, logger }: AppDeps): http.RequestListener {
  return async (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
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
    return sendJson(res, 404, { error: 'not found' });
  };
}
