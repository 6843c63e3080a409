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

export function createMaskError(logger: Logger) {
  return (error: unknown, message: string): Error => {
    const located = error instanceof GraphQLError ? error : undefined;
    const original = located ? located.originalError : error;
    if (original instanceof DomainError) return toClientError(original, located);
    if (original && !(original instanceof GraphQLError)) {
      // Unexpected: log it whole for operators (it never carries plaintext
      // secrets: they are encrypted before any query sees them).
      logger.error({ err: original, path: located?.path?.join('.') }, 'unexpected error in a GraphQL operation');
    }
    return yogaMaskError(error, message, false);
  };
}
