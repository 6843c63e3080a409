// Fixed names for what a request reached, for metric labels and span names:
// never the raw path, its query string or an id in it, so a label has a
// handful of values whatever clients send. Mirrors the routing in
// src/server.ts (test/telemetry/metrics.test.ts checks each route's name).

export type RouteName =
  | '/graphql'
  | '/api/auth'
  | '/engine/v1'
  | '/.well-known/oauth-authorization-server'
  | '/login'
  | '/health'
  | '/ready'
  | '/'
  | 'other';

const EXACT: ReadonlySet<string> = new Set([
  '/graphql',
  '/.well-known/oauth-authorization-server',
  '/login',
  '/health',
  '/ready',
  '/',
]);

export function routeName(url: string | undefined): RouteName {
  let pathname: string;
  try {
    // The same parse server.ts routes by (it resolves dot segments, for one).
    ({ pathname } = new URL(url ?? '/', 'http://localhost'));
  } catch {
    return 'other';
  }
  if (pathname.startsWith('/api/auth/')) return '/api/auth';
  // The engine API, its token endpoint included (src/engine).
  if (pathname.startsWith('/engine/v1/')) return '/engine/v1';
  return EXACT.has(pathname) ? (pathname as RouteName) : 'other';
}

const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The request method, or `other` for anything a client made up. */
export const methodName = (method: string | undefined): string =>
  method !== undefined && METHODS.has(method) ? method : 'other';
