// Rules of trading-engine access (contract section 11), free of HTTP and the
// database: scopes, grant input, and which Alpaca requests an engine may send.
//
// Paths are matched exactly against the contract's templates, on the path as
// the engine sent it: no prefix matching, no decoding. A path that holds a
// percent sign (so no encoded slash, backslash or dot), a backslash, a dot
// segment or an empty segment never matches, whatever it would decode or
// normalise to: only what is checked is what is forwarded.
import { InvalidInputError } from './errors.ts';

export const ENGINE_SCOPES = ['READ', 'TRADE'] as const;
export type EngineScope = (typeof ENGINE_SCOPES)[number];

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
const PARAMETERS: Record<string, RegExp> = {
  '{id}': /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
  '{symbol}': /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/,
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
    return parameter ? parameter.test(segment) : part === segment;
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

/** Whether a grant's scopes permit a route's: TRADE includes READ. */
export function scopesAllow(granted: readonly string[], needed: EngineScope): boolean {
  return granted.includes(needed) || (needed === 'READ' && granted.includes('TRADE'));
}

/** Whether a grant is in force at `now`: not revoked and not past its expiry. */
export function isGrantActive(grant: { revokedAt: Date | null; expiresAt: Date | null }, now: Date): boolean {
  return grant.revokedAt === null && (grant.expiresAt === null || grant.expiresAt > now);
}

/** A grant as grantEngineAccess stores it. */
export interface GrantTerms {
  scopes: EngineScope[];
  expiresAt: Date | null;
}

/** Validates grantEngineAccess's scopes and expiry; scopes come back once each, in ENGINE_SCOPES order. */
export function cleanGrantTerms(
  input: { scopes: readonly string[]; expiresAt?: Date | null },
  now: Date = new Date(),
): GrantTerms {
  const scopes = ENGINE_SCOPES.filter((s) => input.scopes.includes(s));
  if (scopes.length === 0 || scopes.length !== new Set(input.scopes).size) {
    throw new InvalidInputError('scopes', 'scopes must name at least one of READ, TRADE.');
  }
  const expiresAt = input.expiresAt ?? null;
  if (expiresAt !== null && !(expiresAt.getTime() > now.getTime())) {
    throw new InvalidInputError('expiresAt', 'expiresAt must be in the future (or null: until revoked).');
  }
  return { scopes, expiresAt };
}
