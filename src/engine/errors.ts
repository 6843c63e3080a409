// Errors of the engine API, in the envelope of every non-GraphQL route
// (src/http/json.ts): {"error": {"code": "...", "message": "..."}}. Messages
// are fixed texts and never quote the request (no token, key, path value or
// body). The token endpoint answers in OAuth's own shape instead
// (token-endpoint.ts).
import type http from 'node:http';
import { sendError, sendJson } from '../http/json.ts';

export type EngineErrorCode =
  | 'UNAUTHENTICATED'
  | 'NOT_FOUND'
  | 'ROUTE_NOT_ALLOWED'
  | 'INSUFFICIENT_SCOPE'
  | 'CREDENTIAL_INACTIVE'
  | 'CREDENTIAL_NOT_VERIFIED'
  | 'PAYLOAD_TOO_LARGE'
  | 'BAD_REQUEST'
  | 'TOO_MANY_REQUESTS'
  | 'REQUEST_TIMEOUT'
  | 'GUARDRAIL_REFUSED'
  | 'GUARDRAIL_DATA_UNAVAILABLE'
  | 'BROKER_UNREACHABLE'
  | 'BROKER_TIMEOUT'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

/** Every code and its HTTP status (docs/errors.md lists each; test/unit/errors-docs.test.ts checks it). */
export const ENGINE_ERROR_STATUS: Readonly<Record<EngineErrorCode, number>> = {
  UNAUTHENTICATED: 401,
  NOT_FOUND: 404,
  ROUTE_NOT_ALLOWED: 403,
  INSUFFICIENT_SCOPE: 403,
  CREDENTIAL_INACTIVE: 409,
  CREDENTIAL_NOT_VERIFIED: 409,
  PAYLOAD_TOO_LARGE: 413,
  BAD_REQUEST: 400,
  TOO_MANY_REQUESTS: 429,
  REQUEST_TIMEOUT: 408,
  GUARDRAIL_REFUSED: 403,
  GUARDRAIL_DATA_UNAVAILABLE: 503,
  BROKER_UNREACHABLE: 502,
  BROKER_TIMEOUT: 504,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL_SERVER_ERROR: 500,
};

export class EngineError extends Error {
  override name = 'EngineError';
  readonly code: EngineErrorCode;
  readonly headers: Record<string, string>;
  /** More fields of the error object (a guardrail refusal's rule, limit and value). */
  readonly details: Record<string, string>;
  constructor(
    code: EngineErrorCode,
    message: string,
    headers: Record<string, string> = {},
    details: Record<string, string> = {},
  ) {
    super(message);
    this.code = code;
    this.headers = headers;
    this.details = details;
  }
  get status(): number {
    return ENGINE_ERROR_STATUS[this.code];
  }
}

export const engineErrors = {
  unauthenticated: () =>
    new EngineError(
      'UNAUTHENTICATED',
      'Send Authorization: Bearer <access_token>, a token from the token endpoint that has not expired and whose client is not revoked.',
      // RFC 6750 3: a bearer-protected resource names its scheme.
      { 'www-authenticate': 'Bearer realm="engine"' },
    ),
  // One body for an absent credential, another client's, and a revoked or
  // expired grant: the answer never tells them apart.
  notFound: () => new EngineError('NOT_FOUND', 'No credential with this id is granted to this client.'),
  noSuchEndpoint: () => new EngineError('NOT_FOUND', 'No such endpoint of the engine API.'),
  /** A replacement of an order Alpaca answered 404 for: there is nothing to replace. */
  noSuchOrder: () =>
    new EngineError(
      'NOT_FOUND',
      'Alpaca has no order with this id, so there is nothing to replace; nothing was forwarded.',
    ),
  routeNotAllowed: () =>
    new EngineError(
      'ROUTE_NOT_ALLOWED',
      'This method and path are not among the Alpaca requests an engine may send (see docs/engines.md).',
    ),
  insufficientScope: (needed: string) =>
    new EngineError('INSUFFICIENT_SCOPE', `This request needs the ${needed} scope, which the grant does not include.`),
  credentialInactive: () =>
    new EngineError('CREDENTIAL_INACTIVE', 'The credential is deactivated; its owner can reactivate it.'),
  credentialNotVerified: () =>
    new EngineError(
      'CREDENTIAL_NOT_VERIFIED',
      'The credential has no verified keys (never verified, INVALID, or new keys since): its owner must verify it first.',
    ),
  payloadTooLarge: (limit: number) =>
    new EngineError('PAYLOAD_TOO_LARGE', `The request body is larger than ${limit} bytes.`),
  badRequest: (message: string) => new EngineError('BAD_REQUEST', message),
  requestTimeout: (seconds: number) =>
    new EngineError('REQUEST_TIMEOUT', `The request body did not arrive within ${seconds} s; nothing was forwarded.`),
  /** A guardrail of the grant refused the request (403), or a fact a rule needs could not be read (503). */
  guardrail: (refusal: { status: 403 | 503; rule: string; message: string; limit?: string; value?: string }) =>
    refusal.status === 403
      ? new EngineError(
          'GUARDRAIL_REFUSED',
          refusal.message,
          {},
          { rule: refusal.rule, limit: refusal.limit ?? '', value: refusal.value ?? '' },
        )
      : new EngineError('GUARDRAIL_DATA_UNAVAILABLE', refusal.message, {}, { rule: refusal.rule }),
  /** The grant's limits or the credential's keys changed while the request was being checked, again and again. */
  changing: () =>
    new EngineError(
      'SERVICE_UNAVAILABLE',
      "The grant's limits or the credential's keys changed while the request was checked; nothing was forwarded. Send it again.",
      { 'retry-after': '1' },
    ),
  tooManyRequests: (retryAfter: number, limit: string) =>
    new EngineError('TOO_MANY_REQUESTS', `${limit}; try again in ${retryAfter} s.`, {
      'retry-after': String(retryAfter),
    }),
  brokerUnreachable: () =>
    new EngineError(
      'BROKER_UNREACHABLE',
      'Could not connect to Alpaca. Nothing was answered; a request that changes something may or may not have reached it.',
    ),
  brokerTimeout: (timeoutMs: number) =>
    new EngineError(
      'BROKER_TIMEOUT',
      `Alpaca did not answer within ${timeoutMs} ms. For an order, its state is unknown: look it up by its ` +
        'client_order_id (GET v2/orders:by_client_order_id) before sending it again. Nothing is retried by this server.',
    ),
  unavailable: (retryAfter: number) =>
    new EngineError(
      'SERVICE_UNAVAILABLE',
      'The database is not reachable right now; nothing was forwarded. Try again in a few seconds.',
      { 'retry-after': String(retryAfter) },
    ),
  internal: () => new EngineError('INTERNAL_SERVER_ERROR', 'Unexpected error; nothing was forwarded.'),
};

export function sendEngineError(res: http.ServerResponse, error: EngineError): void {
  if (error.code === 'GUARDRAIL_REFUSED' || error.code === 'GUARDRAIL_DATA_UNAVAILABLE') {
    // Also code and message at the top, where Alpaca puts them in its own
    // errors: an engine built on Alpaca's SDKs then shows why it was refused.
    const { code, message, details } = error;
    sendJson(res, error.status, { error: { code, message, ...details }, code, message }, error.headers);
    return;
  }
  sendError(res, error.status, { code: error.code, message: error.message, ...error.details }, error.headers);
}
