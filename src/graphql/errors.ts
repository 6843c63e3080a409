// What clients see of errors. Domain errors become GraphQL errors with
// extensions.code (and extensions.field for bad input); GraphQL's own errors
// (syntax, validation) pass through; everything else is masked as
// INTERNAL_SERVER_ERROR without stack, SQL or message, and logged here.
import { type ExecutionResult, GraphQLError } from 'graphql';
import { type Plugin, maskError as yogaMaskError } from 'graphql-yoga';
import { isDatabaseUnavailable, isStatementCancelled } from '../db/errors.ts';
import {
  DomainError,
  InvalidInputError,
  LimitExceededError,
  ServiceUnavailableError,
  TooManyRequestsError,
} from '../domain/errors.ts';
import { describeError, type Logger } from '../logger.ts';

const HTTP: Partial<Record<DomainError['code'], { status: number; headers?: Record<string, string> }>> = {
  UNAUTHENTICATED: { status: 401 },
  SERVICE_UNAVAILABLE: { status: 503, headers: { 'Retry-After': String(ServiceUnavailableError.retryAfterSeconds) } },
};

function toClientError(domain: DomainError, located: GraphQLError | undefined): GraphQLError {
  const retryAfter = domain instanceof TooManyRequestsError ? domain.retryAfterSeconds : undefined;
  const http =
    retryAfter === undefined ? HTTP[domain.code] : { status: 429, headers: { 'Retry-After': String(retryAfter) } };
  return new GraphQLError(domain.message, {
    ...(located ? { nodes: located.nodes, path: located.path } : {}),
    extensions: {
      code: domain.code,
      ...(domain instanceof InvalidInputError ? { field: domain.field } : {}),
      ...(domain instanceof LimitExceededError ? { limit: domain.limit } : {}),
      ...(retryAfter !== undefined ? { retryAfter } : {}),
      ...(http ? { http } : {}),
    },
  });
}

/**
 * Variables that do not fit their types (a missing or unknown input field, a
 * string where a number belongs, a malformed UUID or Decimal, a required one
 * absent or null) are bad user input: give them the code and the field, as
 * for our own validation. The field is its path inside the variable, without
 * list positions: "apiKey" for $input.apiKey, "guardrails.maxOrderNotional"
 * for a nested input's field (as resolvers name them), the variable's name
 * when it is the value.
 */
const BAD_VARIABLE =
  /^Variable "\$(\w+)" (?:got invalid value |of required type "[^"]*" was not provided\.|of non-null type "[^"]*" must not be null\.)/;

function asBadVariable(error: GraphQLError): GraphQLError | undefined {
  const variable = BAD_VARIABLE.exec(error.message);
  if (!variable || error.extensions?.code) return undefined;
  const named = /Field "(\w+)" (?:of required type|is not defined)/.exec(error.message)?.[1];
  const at = / at "([\w.[\]]+)"; /.exec(error.message)?.[1];
  const inside = (at ?? '')
    .replace(/\[\d+\]/g, '')
    .split('.')
    .slice(1);
  const field = [...inside, ...(named ? [named] : [])].join('.') || variable[1];
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    extensions: { ...error.extensions, code: 'BAD_USER_INPUT', field },
  });
}

export function createMaskError(logger: Logger) {
  return (error: unknown, message: string): Error => {
    const located = error instanceof GraphQLError ? error : undefined;
    const original = located ? located.originalError : error;
    if (original instanceof DomainError) return toClientError(original, located);
    if (isDatabaseUnavailable(original)) {
      logger.warn({ error: describeError(original) }, 'database unavailable during a GraphQL operation');
      return toClientError(new ServiceUnavailableError(), located);
    }
    const badVariable = located && asBadVariable(located);
    if (badVariable) return badVariable;
    if (isStatementCancelled(original)) {
      // Masked like any failure (the client cannot act on it), but named for operators.
      logger.warn(
        { error: describeError(original), path: located?.path?.join('.') },
        'statement cut by statement_timeout (STATEMENT_TIMEOUT_MS)',
      );
    } else if (original && !(original instanceof GraphQLError)) {
      // Unexpected: log what operators need (see describeError); it never
      // holds plaintext secrets, which are sealed before any query sees them.
      logger.error(
        { error: describeError(original), path: located?.path?.join('.') },
        'unexpected error in a GraphQL operation',
      );
    }
    return clientFacing(yogaMaskError(error, message, false));
  };
}

/**
 * The last touch on errors yoga made itself:
 * - it attaches extensions.originalError to some, e.g. the JSON parser's
 *   message for a malformed body, which quotes the body (and any secret in
 *   it): clients get the message and code only;
 * - it marks request errors (malformed JSON, no query) `spec`, which keeps
 *   them at HTTP 200 for clients accepting application/json. A request that
 *   is not GraphQL at all deserves its 4xx whatever the client accepts.
 */
function clientFacing(error: Error): Error {
  if (!(error instanceof GraphQLError)) return error;
  const { originalError, http, ...rest } = error.extensions ?? {};
  const httpInfo = http as { status?: number; spec?: boolean; headers?: Record<string, string> } | undefined;
  if (originalError === undefined && !httpInfo?.spec) return error;
  const { spec: _spec, ...keptHttp } = httpInfo ?? {};
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions: { ...rest, ...(httpInfo ? { http: keptHttp } : {}) },
  });
}

/**
 * graphql-js's "Did you mean …?" names schema members the client did not
 * write. graphql-armor hides it in validation errors about fields only (its
 * pattern misses "Did you mean the enum value …?"), not in the errors of
 * variables whose values do not fit (a misspelt input field): where
 * introspection is off, this removes it from every error of every result.
 */
const SUGGESTION = /\s*Did you mean [^?]*\?/g;

export function withoutSuggestions(error: GraphQLError): GraphQLError {
  const message = error.message.replace(SUGGESTION, ' [Suggestion hidden]');
  if (message === error.message) return error;
  return new GraphQLError(message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: error.extensions,
  });
}

export function useHiddenSuggestions(): Plugin {
  const clean = (result: ExecutionResult): ExecutionResult =>
    result.errors?.length ? { ...result, errors: result.errors.map(withoutSuggestions) } : result;
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result)) setResult(result.map(clean));
      else if (!(Symbol.asyncIterator in result)) setResult(clean(result as ExecutionResult));
    },
  };
}
