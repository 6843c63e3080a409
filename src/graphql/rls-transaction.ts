// One RLS transaction per GraphQL operation.
//
// Why per operation and not per resolver: @pothos/plugin-prisma loads
// relations from many resolvers through the context's client; one transaction
// gives them all one snapshot and one connection, and costs the wrapper's 2
// round trips on PostgreSQL (BEGIN with the user scope, COMMIT; see
// src/db/rls.ts) once per request instead of once per resolver. A mutation commits only if the whole operation succeeded, so no
// request ever leaves half its writes behind.
//
// Operations that touch no data (introspection, viewer, __typename) open no
// transaction at all: ctx.db stays a guard that throws if used. How the
// transaction reaches resolvers as ctx.db: src/graphql/context.ts.
import {
  type DocumentNode,
  type ExecutionResult,
  type FragmentDefinitionNode,
  getOperationAST,
  Kind,
  type SelectionSetNode,
} from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Database } from '../db/database.ts';
import { type GraphQLContext, runInOperationTransaction } from './context.ts';

/** Root fields answered without the database. */
const NO_DATABASE_FIELDS = new Set(['viewer', '__typename', '__schema', '__type']);

function rootFieldNames(
  selectionSet: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  names = new Set<string>(),
): Set<string> {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) names.add(selection.name.value);
    else if (selection.kind === Kind.INLINE_FRAGMENT) rootFieldNames(selection.selectionSet, fragments, names);
    else {
      const fragment = fragments.get(selection.name.value);
      // An unknown fragment fails validation before execution; be safe anyway.
      if (fragment) rootFieldNames(fragment.selectionSet, fragments, names);
      else names.add(`...${selection.name.value}`);
    }
  }
  return names;
}

export function needsDatabase(document: DocumentNode, operationName?: string | null): boolean {
  const operation = getOperationAST(document, operationName);
  if (!operation) return true;
  const fragments = new Map(
    document.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  return [...rootFieldNames(operation.selectionSet, fragments)].some((name) => !NO_DATABASE_FIELDS.has(name));
}

export function useRlsTransaction(db: Database): Plugin<GraphQLContext> {
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const viewer = args.contextValue.viewer;
      if (!viewer || !needsDatabase(args.document, args.operationName)) return;
      setExecuteFn((executeArgs) =>
        runInOperationTransaction(
          db,
          executeArgs.contextValue as GraphQLContext,
          viewer.id,
          async () => {
            const result = await executeFn(executeArgs);
            // Streams would outlive the transaction; the schema has no @defer,
            // @stream or subscriptions, so this cannot happen.
            if (isAsyncIterable(result)) throw new Error('streamed results are not supported');
            return result as ExecutionResult;
          },
          (result) => !result.errors?.length,
        ),
      );
    },
  };
}
