// One log line per HTTP request (pino-http): method, path (never the query
// string, which can carry GraphQL variables), status, duration, and for
// GraphQL the operation, the signed-in user and the outcome. Headers are not
// logged at all (so no Authorization or Cookie), and the logger redacts known
// secret fields besides.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../logger.ts';

/** What the GraphQL layer learns about a request, for its log line. */
export interface RequestInfo {
  operation?: string;
  userId?: string;
  outcome?: string;
}

const infos = new WeakMap<IncomingMessage, RequestInfo>();

export function requestInfo(req: IncomingMessage): RequestInfo {
  let info = infos.get(req);
  if (!info) {
    info = {};
    infos.set(req, info);
  }
  return info;
}

const pathOf = (url: string | undefined) => (url ?? '/').split('?')[0];
const PROBES = new Set(['/health', '/ready']);

export function createRequestLogger(logger: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  return pinoHttp({
    logger,
    genReqId: () => randomUUID(),
    quietReqLogger: true,
    wrapSerializers: false,
    serializers: {
      req: (req: IncomingMessage) => ({ method: req.method, path: pathOf(req.url) }),
      res: (res: ServerResponse) => ({ status: res.statusCode }),
    },
    customProps: (req) => ({ ...infos.get(req) }),
    // 503 is an outage already logged where it was detected; other 5xx are bugs.
    customLogLevel: (_req, res, err) => (res.statusCode === 503 ? 'warn' : err || res.statusCode >= 500 ? 'error' : 'info'),
    // pino-http invents an Error (with a stack) for any 5xx; the status says it all.
    customErrorObject: (_req, _res, error, value) =>
      error.message.startsWith('failed with status code') ? { ...value, err: undefined } : value,
    customSuccessMessage: (req, res) => `${req.method} ${pathOf(req.url)} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method} ${pathOf(req.url)} ${res.statusCode}`,
    autoLogging: { ignore: (req) => PROBES.has(pathOf(req.url) ?? '') },
  });
}
