// CORS, one policy for every route (/graphql, /api/auth/*, the probes...):
// a page on a trusted origin (BETTER_AUTH_URL's, TRUSTED_ORIGINS) may call the
// API with credentials and read the answer; any other origin gets no CORS
// header at all, so its scripts read nothing.
//
// By hand rather than yoga's `cors` option (@whatwg-node/server's useCORS),
// which answers an origin it does not allow with a header: with several
// allowed origins `Access-Control-Allow-Origin: null` (which a sandboxed
// iframe's origin matches), with one that origin, and once `*` is listed an
// echo of any origin, each with credentials. better-auth sets no CORS headers
// itself, so /api/auth needs the policy too; it is a set lookup, for every
// route in one place.
import type http from 'node:http';

const ALLOWED_METHODS = 'GET, POST, OPTIONS';
/** What our clients send: JSON, a bearer token, and the CSRF-prevention headers (src/graphql/yoga.ts). */
const ALLOWED_HEADERS = 'content-type, authorization, x-graphql-yoga-csrf, apollo-require-preflight';
/** How long a browser may reuse a preflight's answer. */
const PREFLIGHT_MAX_AGE_SECONDS = '600';

/**
 * Returns a function that sets the CORS headers of a response before it is
 * routed, and answers preflight requests itself (then returns true: the
 * request is done).
 */
export function createCors(trustedOrigins: readonly string[]) {
  const trusted = new Set(trustedOrigins);
  return (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    // The answer depends on Origin: caches must not hand one origin's to another.
    res.setHeader('vary', 'Origin');
    const origin = req.headers.origin;
    const allowed = origin !== undefined && trusted.has(origin);
    if (allowed) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
    }
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!preflight) return false;
    if (allowed) {
      res.setHeader('access-control-allow-methods', ALLOWED_METHODS);
      res.setHeader('access-control-allow-headers', ALLOWED_HEADERS);
      res.setHeader('access-control-max-age', PREFLIGHT_MAX_AGE_SECONDS);
    }
    res.writeHead(204, { 'content-length': '0' }).end();
    return true;
  };
}
