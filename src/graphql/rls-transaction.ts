// When GraphQL uses the request transaction (src/db/request-transaction.ts):
// an envelop plugin that wraps the execution of every operation that reads
// data in one transaction scoped to the viewer, and a validation rule for the
// fields that wait on the network and so run without it until they ask for
// it. Operations that touch no data (introspection, viewer, __typename) open
// none. Why per operation, and how a field opts out:
// docs/architecture/request-transaction.md.
import {
  type ASTVisitor,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLSchema,
  getOperationAST,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Database } from '../db/database.ts';
import { runInOperationTransaction, runWithLateTransaction, type WithUser } from '../db/request-transaction.ts';
import type { GraphQLContext } from './context.ts';
import { type OperationKey, perOperation } from './per-operation.ts';

/**
 * The field extension by which a root field opts out of the per-operation
 * transaction (`extensions: { [OWN_TRANSACTION]: true }`): its operation runs
 * with ctx.steps, and the field opens the transaction for its write. It must
 * be the only root field of its operation (soleOwnTransactionField).
 */
export const OWN_TRANSACTION = 'ownTransaction';

/** Root fields answered without the database. */
const NO_DATABASE_FIELDS = new Set(['viewer', '__typename', '__schema', '__type']);

/** Every root field node of an operation, through fragments (aliases count apart). */
function rootFields(
  selectionSet: SelectionSetNode,
  fragments: (name: string) => FragmentDefinitionNode | null | undefined,
  fields: FieldNode[] = [],
): FieldNode[] {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) fields.push(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) rootFields(selection.selectionSet, fragments, fields);
    else {
      const fragment = fragments(selection.name.value);
      if (fragment) rootFields(fragment.selectionSet, fragments, fields);
    }
  }
  return fields;
}

function ownTransactionField(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  field: FieldNode,
): string | undefined {
  const definition = schema.getRootType(operation.operation)?.getFields()[field.name.value];
  return definition?.extensions?.[OWN_TRANSACTION] === true ? definition.name : undefined;
}

/** Validation rule: a field with its own transaction is alone in its operation (see the top of this file). */
export function soleOwnTransactionField(context: ValidationContext): ASTVisitor {
  return {
    OperationDefinition(operation) {
      const fields = rootFields(operation.selectionSet, (name) => context.getFragment(name)).filter(
        (f) => f.name.value !== '__typename',
      );
      if (fields.length < 2) return;
      for (const field of fields) {
        const name = ownTransactionField(context.getSchema(), operation, field);
        if (!name) continue;
        context.reportError(
          new GraphQLError(
            `${name} must be the only field of its operation: it waits on the broker with no database ` +
              'transaction open, which other fields need. Send them in a separate request.',
            { nodes: field, extensions: { code: 'OPERATION_NOT_SUPPORTED' } },
          ),
        );
        return;
      }
    },
  };
}

/**
 * The root fields of the operation to execute, through fragments; null when
 * the operation or one of its fragments cannot be found (validation rejects
 * such documents first; be safe anyway).
 */
function operationRootFields(
  document: DocumentNode,
  operationName?: string | null,
): { operation: OperationDefinitionNode; fields: FieldNode[] } | null {
  const operation = getOperationAST(document, operationName);
  if (!operation) return null;
  const fragments = new Map(
    document.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  let unresolved = false;
  const fields = rootFields(operation.selectionSet, (name) => {
    const fragment = fragments.get(name);
    if (!fragment) unresolved = true;
    return fragment;
  });
  return unresolved ? null : { operation, fields };
}

type RootFields = ReturnType<typeof operationRootFields>;

/** Whether an operation opens a transaction: none, one up front, or one a field opens late. */
type Decision = 'none' | 'operation' | 'late';

const touchesData = (root: RootFields) => !root || root.fields.some((f) => !NO_DATABASE_FIELDS.has(f.name.value));

const hasOwnTransactionField = (schema: GraphQLSchema, root: RootFields) =>
  !!root && root.fields.some((f) => ownTransactionField(schema, root.operation, f));

export function needsDatabase(document: DocumentNode, operationName?: string | null): boolean {
  return touchesData(operationRootFields(document, operationName));
}

/** Whether the operation to execute has a field that opts out (validation made it the only one). */
export function runsOwnTransaction(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName?: string | null,
): boolean {
  return hasOwnTransactionField(schema, operationRootFields(document, operationName));
}

export function useRlsTransaction(db: Database): Plugin<GraphQLContext> {
  const withUser: WithUser = (userId, work, commitIf) => db.withUser(userId, work, commitIf);
  // One walk of each document decides both: whether to open a transaction, and when.
  const decide = perOperation(
    ({ schema, document, operationName }: OperationKey & { schema: GraphQLSchema }): Decision => {
      const root = operationRootFields(document, operationName);
      return !touchesData(root) ? 'none' : hasOwnTransactionField(schema, root) ? 'late' : 'operation';
    },
  );
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(soleOwnTransactionField);
    },
    onExecute({ args, executeFn, setExecuteFn }) {
      const viewer = args.contextValue.viewer;
      if (!viewer) return;
      const decision = decide(args);
      if (decision === 'none') return;
      const run = decision === 'late' ? runWithLateTransaction : runInOperationTransaction;
      setExecuteFn((executeArgs) =>
        run(
          withUser,
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
