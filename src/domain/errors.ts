// Errors a client can act on. Domain code throws these without knowing about
// GraphQL; the GraphQL layer turns them into errors with extensions.code
// (src/graphql/errors.ts). Anything else is unexpected and gets masked.

export abstract class DomainError extends Error {
  abstract readonly code:
    | 'BAD_USER_INPUT'
    | 'NOT_FOUND'
    | 'CONFLICT'
    | 'UNAUTHENTICATED'
    | 'SERVICE_UNAVAILABLE'
    | 'UNSUPPORTED_CREDENTIAL_TYPE'
    | 'TOO_MANY_REQUESTS'
    | 'LIMIT_EXCEEDED';
}

/** Input that fails validation; `field` names the input field. */
export class InvalidInputError extends DomainError {
  override name = 'InvalidInputError';
  readonly code = 'BAD_USER_INPUT';
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** Absent, or not the caller's: the two are never told apart. */
export class NotFoundError extends DomainError {
  override name = 'NotFoundError';
  readonly code = 'NOT_FOUND';
  constructor(what: string) {
    super(`${what} not found.`);
  }
}

export class ConflictError extends DomainError {
  override name = 'ConflictError';
  readonly code = 'CONFLICT';
}

export class UnauthenticatedError extends DomainError {
  override name = 'UnauthenticatedError';
  readonly code = 'UNAUTHENTICATED';
  constructor() {
    super(
      'You must be signed in. Sign in at /api/auth/sign-in/email, then send the session cookie or an Authorization: Bearer token.',
    );
  }
}

/** The database is unreachable for now; nothing was written. Retry shortly. */
export class ServiceUnavailableError extends DomainError {
  override name = 'ServiceUnavailableError';
  readonly code = 'SERVICE_UNAVAILABLE';
  static readonly retryAfterSeconds = 5;
  constructor() {
    super('The database is not reachable right now; nothing was changed. Try again in a few seconds.');
  }
}

/** The operation is not available for this credential's type (e.g. verification or an engine grant of a non-Alpaca credential). */
export class UnsupportedCredentialTypeError extends DomainError {
  override name = 'UnsupportedCredentialTypeError';
  readonly code = 'UNSUPPORTED_CREDENTIAL_TYPE';
  /** `what`: what cannot be done with it, e.g. "verified" or "granted to trading engines". */
  constructor(credentialType: string, supported: string[], what = 'verified') {
    super(`Credentials of type "${credentialType}" cannot be ${what}; supported: ${supported.join(', ')}.`);
  }
}

/** A limit was reached; try again after `retryAfterSeconds`. */
export class TooManyRequestsError extends DomainError {
  override name = 'TooManyRequestsError';
  readonly code = 'TOO_MANY_REQUESTS';
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A stored quantity reached its configured maximum; `limit` names the setting (e.g. MAX_CREDENTIALS_PER_ACCOUNT). */
export class LimitExceededError extends DomainError {
  override name = 'LimitExceededError';
  readonly code = 'LIMIT_EXCEEDED';
  readonly limit: string;
  constructor(limit: string, message: string) {
    super(message);
    this.limit = limit;
  }
}
