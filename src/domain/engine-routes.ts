// Which Alpaca requests an engine may send, and the scope each needs: the
// allow-list of routes (docs/engines.md), free of HTTP and the database.
//
// Paths are matched exactly against these templates, on the path as the
// engine sent it: no prefix matching, no decoding. A path that holds a
// percent sign (so no encoded slash, backslash or dot), a backslash, a dot
// segment or an empty segment never matches, whatever it would decode or
// normalise to: only what is checked is what is forwarded.
import type { EngineScope } from './engine-grants.ts';
import { isUuid } from './ids.ts';

/** The methods the allowed routes use. */
export type EngineMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

interface RouteDefinition {
  method: EngineMethod;
  template: string;
  scope: EngineScope;
}

// READ: account, positions, orders, assets, clock. TRADE: READ plus placing,
// replacing and cancelling orders, closing positions.
const ROUTES: readonly RouteDefinition[] = [
  { method: 'GET', template: 'v2/account', scope: 'READ' },
  { method: 'GET', template: 'v2/account/activities', scope: 'READ' },
  { method: 'GET', template: 'v2/positions', scope: 'READ' },
  { method: 'GET', template: 'v2/positions/{symbol}', scope: 'READ' },
  { method: 'GET', template: 'v2/orders', scope: 'READ' },
  { method: 'GET', template: 'v2/orders/{id}', scope: 'READ' },
  { method: 'GET', template: 'v2/orders:by_client_order_id', scope: 'READ' },
  { method: 'GET', template: 'v2/assets', scope: 'READ' },
  { method: 'GET', template: 'v2/assets/{symbol}', scope: 'READ' },
  { method: 'GET', template: 'v2/clock', scope: 'READ' },
  { method: 'GET', template: 'v2/calendar', scope: 'READ' },
  { method: 'POST', template: 'v2/orders', scope: 'TRADE' },
  { method: 'PATCH', template: 'v2/orders/{id}', scope: 'TRADE' },
  { method: 'DELETE', template: 'v2/orders/{id}', scope: 'TRADE' },
  { method: 'DELETE', template: 'v2/orders', scope: 'TRADE' },
  { method: 'DELETE', template: 'v2/positions', scope: 'TRADE' },
  { method: 'DELETE', template: 'v2/positions/{symbol}', scope: 'TRADE' },
];

/** What a parameter segment may be: an order id is a UUID; a symbol (or asset id) letters, digits, dots, dashes. */
const PARAMETERS: Record<string, (segment: string) => boolean> = {
  '{id}': isUuid,
  '{symbol}': (segment) => /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(segment),
};

/** Characters a path may hold at all: no %, \, ?, # or anything outside visible ASCII. */
const PATH_CHARACTERS = /^[A-Za-z0-9._~:/-]*$/;

/** An allowed Alpaca request, as matched. */
export interface AlpacaRoute {
  method: EngineMethod;
  /** The template, e.g. "v2/orders/{id}". */
  template: string;
  /** The path to forward, exactly as sent and checked, e.g. "v2/orders/61e69015-...". */
  path: string;
  /** The scope it needs. */
  scope: EngineScope;
  /** What the audit trail and the log say: "GET /v2/orders/{id}" (never a value). */
  request: string;
}

/**
 * The path's segments, or null when it is not a plain path: characters
 * outside PATH_CHARACTERS (any percent-encoding among them), an empty
 * segment ("//", a trailing "/"), or a "." or ".." segment.
 */
export function plainSegments(path: string): string[] | null {
  if (!path.startsWith('/') || !PATH_CHARACTERS.test(path)) return null;
  const segments = path.slice(1).split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return null;
  return segments;
}

function matches(template: string, segments: string[]): boolean {
  const parts = template.split('/');
  if (parts.length !== segments.length) return false;
  return parts.every((part, i) => {
    const segment = segments[i] as string;
    const parameter = PARAMETERS[part];
    return parameter ? parameter(segment) : part === segment;
  });
}

/**
 * The allowed route for `method` and the Alpaca path (the part after
 * ".../alpaca/", as sent), or null when it is not on the lists.
 */
export function matchAlpacaRoute(method: string, segments: string[]): AlpacaRoute | null {
  const route = ROUTES.find((r) => r.method === method && matches(r.template, segments));
  if (!route) return null;
  return {
    method: route.method,
    template: route.template,
    path: segments.join('/'),
    scope: route.scope,
    request: `${route.method} /${route.template}`,
  };
}
