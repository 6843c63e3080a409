// What clients see of errors. Domain errors become GraphQL errors with
// extensions.code (and extensions.field for bad input); GraphQL's own errors
// (syntax, validation) pass through; everything else is masked as
// INTERNAL_SERVER_ERROR without stack, SQL or message, and logged here.
import { GraphQLError } from 'graphql';
import { maskError as yogaMaskError } from 'graphql-yoga';
import { DomainError, InvalidInputError } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';

const HTTP_STATUS: Partial<Record<DomainError['code'], number>> = { UNAUTHENTICATED: 401 };

function toClientError(domain: DomainError, located: GraphQLError | undefined): GraphQLError {
  const status = HTTP_STATUS[domain.code];
  return new GraphQLError(domain.message, {
    ...(located ? { nodes: located.nodes, path: located.path } : {}),
    extensions: {
      code: domain.code,
      ...(domain instanceof InvalidInputError ? { field: domain.field } : {}),
      ...(status ? { http: { status } } : {}),
    },
  });
}

/**
 * Variables that do not fit their types (a missing or unknown input field, a
 * string where a number belongs, a malformed UUID) are bad user input: give
 * them the code and the field, as for our own validation.
 */
function asBadVariable(error: GraphQLError): GraphQLError | undefined {
  const variable = /^Variable "\$(\w+)" got invalid value /.exec(error.message);
  if (!variable || error.extensions?.code) return undefined;
  const named = /Field "([\w.]+)" (?:of required type|is not defined)/.exec(error.message)?.[1];
  const at = / at "([\w.[\]]+)"; /.exec(error.message)?.[1];
  const field = (named ?? at ?? variable[1] ?? '').split('.').pop()?.replace(/\[\d+\]$/, '');
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
    const badVariable = located && asBadVariable(located);
    if (badVariable) return badVariable;
    if (original && !(original instanceof GraphQLError)) {
      // Unexpected: log it whole for operators (it never carries plaintext
      // secrets: they are encrypted before any query sees them).
      logger.error({ err: original, path: located?.path?.join('.') }, 'unexpected error in a GraphQL operation');
    }
    return withoutOriginalError(yogaMaskError(error, message, false));
  };
}

/**
 * Yoga attaches extensions.originalError to some of its own errors, e.g. the
 * JSON parser's message for a malformed body, which quotes the body (and any
 * secret in it). Clients get the message and code only.
 */
function withoutOriginalError(error: Error): Error {
  if (!(error instanceof GraphQLError) || !error.extensions?.originalError) return error;
  const { originalError: _dropped, ...extensions } = error.extensions;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions,
  });
}
