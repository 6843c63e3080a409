// The complexity limit (docs/security.md): an operation whose estimated
// work exceeds MAX_QUERY_COMPLEXITY is refused before anything runs.
//
// The estimate is @pothos/plugin-complexity's, from the complexities declared
// on the schema (src/schema/complexity.ts): each field 1, each list's
// selection times the page it asks for or its cap. It depends on the
// variables (`first: $first`), so it is computed once they are known: in
// onExecute, before the RLS plugin opens the operation's transaction (this
// plugin comes first), rather than as a validation rule, whose results yoga
// caches per document text. An operation without variables is computed once.
import { complexityFromQuery } from '@pothos/plugin-complexity';
import {
  type DocumentNode,
  type ExecutionArgs,
  GraphQLError,
  getOperationAST,
  Kind,
  type OperationDefinitionNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLContext } from './context.ts';
import { perOperation } from './per-operation.ts';

/**
 * The complexity of the operation `args` would execute; undefined when its
 * variables do not fit their types (execution then refuses them, before any
 * resolver runs) or the operation is missing (validation refuses that).
 */
export function operationComplexity(
  args: Pick<ExecutionArgs, 'schema' | 'document' | 'operationName' | 'variableValues' | 'contextValue'>,
): number | undefined {
  const operation = getOperationAST(args.document, args.operationName);
  if (!operation) return undefined;
  // complexityFromQuery measures a document's first operation: give it the
  // one to execute, with the fragments.
  const document: DocumentNode = {
    kind: Kind.DOCUMENT,
    definitions: [
      operation as OperationDefinitionNode,
      ...args.document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION),
    ],
  };
  try {
    return complexityFromQuery(document, {
      schema: args.schema,
      ctx: args.contextValue as object,
      variables: (args.variableValues ?? {}) as Record<string, unknown>,
    }).complexity;
  } catch (error) {
    // Variables that do not coerce: graphql's own error, reported by execution.
    if (error instanceof GraphQLError && /^Variable "\$/.test(error.message)) return undefined;
    throw error;
  }
}

export function complexityLimitError(complexity: number, limit: number): GraphQLError {
  const n = (value: number) => value.toLocaleString('en-US');
  return new GraphQLError(
    `Query too complex: ${n(complexity)} against a limit of ${n(limit)}. Every field counts 1, and what is ` +
      'selected under a list counts once per item it can hold: a connection the page it asks for (first), ' +
      'Account.credentials the per-account maximum. Ask for smaller pages or fewer nested lists.',
    {
      extensions: {
        code: 'QUERY_LIMIT_EXCEEDED',
        limit: 'complexity',
        complexity,
        maxComplexity: limit,
        http: { status: 400 },
      },
    },
  );
}

export function useQueryComplexity(limit: number): Plugin<GraphQLContext> {
  // An operation without variables always has the same complexity (the
  // limits it reads from the context are fixed for this handler): computed
  // once per document and operation name. With variables it is computed per
  // request, and their values (secrets among them) are never kept.
  const fixed = perOperation(operationComplexity);
  const complexityOf = (args: Parameters<typeof operationComplexity>[0]) =>
    getOperationAST(args.document, args.operationName)?.variableDefinitions?.length
      ? operationComplexity(args)
      : fixed(args);
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const complexity = complexityOf(args);
      if (complexity !== undefined && complexity > limit) {
        setResultAndStopExecution({ errors: [complexityLimitError(complexity, limit)] });
      }
    },
  };
}
