// The route table of the node:http server: each route is an exact path, or a
// prefix, mapped to its handler (src/server.ts builds the table). A request
// no route takes gets a 404 in the JSON error envelope (json.ts).
//
// Written here rather than with a router package (find-my-way, the
// well-known one): the table has a handful of routes, two of them whole
// prefixes handed to an API that routes itself (better-auth, the engine API),
// so matching is two string prefix tests and one Map lookup per request.
// find-my-way would add its own URL decoding and a tree walk on every
// request, and it cannot express the engine API's rule that a path is also
// matched as sent, before dot segments are resolved (so that no path can
// reach another route by way of "/engine/../").
import type http from 'node:http';
import { sendError } from './json.ts';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export interface Route {
  /** An exact path, or with `prefix` the start of every path the route takes. */
  path: string;
  prefix?: boolean;
  /** A prefix route also takes a request whose path as sent (before dot segments are resolved) starts with it. */
  asSent?: boolean;
  /** The methods an exact route answers (any when absent); other methods get the 404. */
  methods?: readonly string[];
  handler: Handler;
}

/** Returns the handler that routes each request by the table; prefix routes are tried first, in table order. */
export function createRouter(routes: readonly Route[]): Handler {
  const prefixes = routes.filter((r) => r.prefix);
  const exact = new Map(routes.filter((r) => !r.prefix).map((r) => [r.path, r]));
  if (exact.size + prefixes.length !== routes.length) throw new Error('two routes for one path');
  return (req, res) => {
    const url = req.url ?? '/';
    // The path normalised as a URL (dot segments resolved), and as sent.
    const { pathname } = new URL(url, 'http://localhost');
    for (const route of prefixes) {
      if (pathname.startsWith(route.path) || (route.asSent && url.startsWith(route.path))) {
        return route.handler(req, res);
      }
    }
    const route = exact.get(pathname);
    if (route && (!route.methods || route.methods.includes(req.method ?? ''))) return route.handler(req, res);
    return sendError(res, 404, { code: 'NOT_FOUND', message: 'No such route.' });
  };
}
