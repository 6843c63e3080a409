// The hot read in one statement. An operation whose only root field is
// `accounts`, selecting scalar fields of Account, of its credentials
// (`credentials(credentialType, includeInactive)`) and of their verification,
// is answered by one SELECT in the operation's RLS transaction (ctx.db; on
// PostgreSQL sent on that transaction's own connection, see selectText in
// src/db/request-transaction.ts) that returns the rows as JSON text; the
// response is built from those rows with the same rules the resolvers apply
// (src/domain) and the schema's own scalars. It skips graphql-js' per-field
// execution, Pothos' selection planning and Prisma's query pipeline, which
// were most of this read's CPU.
//
// Chosen from the document alone (once per document and operation name), it
// falls back to the general path for anything else: another root field, a
// field or argument this file does not know, a directive, a fragment on
// another type, variables that do not coerce (graphql-js then reports them),
// or a value the general path would turn into an error. The answer is the
// general path's, field for field and in the same order (a property test
// compares the two on generated data and selections:
// test/api/fast-read.test.ts).
import {
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLOutputType,
  type GraphQLSchema,
  getArgumentValues,
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  locatedError,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { type ScopedDb, selectText } from '../db/request-transaction.ts';
import { displayNickname } from '../domain/credential.ts';
import { type VerificationState, verificationFromColumns } from '../domain/verification.ts';
import { dbOutsideTransaction, type GraphQLContext } from './context.ts';
import { type OperationKey, perOperation } from './per-operation.ts';

/** A row of the SELECT (a JSON array), in the order of its Columns. */
type Row = readonly unknown[];

/** Milliseconds since the epoch: exact for the timestamptz(3) columns, and free of the session's time zone. */
const epochMs = (column: string) => `(extract(epoch from ${column}) * 1000)::bigint`;
const asDate = (ms: unknown) => (ms == null ? null : new Date(ms as number));

/** A leaf of a row type: the SQL expressions it reads, and the value its resolver returns from them. */
interface LeafSpec {
  sql: readonly string[];
  value: (values: Row) => unknown;
}
const column = (sql: string): LeafSpec => ({ sql: [sql], value: ([v]) => v });
const timestamp = (sql: string): LeafSpec => ({ sql: [epochMs(sql)], value: ([ms]) => asDate(ms) });

// What the resolvers of src/schema return, field by field (account.ts, credential.ts, verification.ts).
const ACCOUNT_FIELDS: Record<string, LeafSpec> = {
  id: column('a.id'),
  userId: column('a.user_id'),
  accountName: column('a.account_name'),
  isActive: column('a.is_active'),
  createdAt: timestamp('a.created_at'),
  updatedAt: timestamp('a.updated_at'),
};

const CREDENTIAL_FIELDS: Record<string, LeafSpec> = {
  id: column('c.id'),
  accountId: column('c.account_id'),
  credentialType: column('c.credential_type'),
  nickname: { sql: ['c.nickname', 'c.credential_type'], value: ([n, t]) => displayNickname(n as string, t as string) },
  apiKeyHint: column('c.api_key_hint'),
  isActive: column('c.is_active'),
  createdAt: timestamp('c.created_at'),
  updatedAt: timestamp('c.updated_at'),
};

/** Credential.verification: the state its resolver rebuilds from these columns. */
const VERIFICATION_SQL = [
  'c.verification_status',
  epochMs('c.verification_checked_at'),
  'c.verification_environment',
  'c.broker_account_number',
  'c.broker_account_status',
  'c.verification_message',
];
const verificationState = ([status, checkedAt, environment, number, accountStatus, message]: Row) =>
  verificationFromColumns({
    verificationStatus: status as string,
    verificationCheckedAt: asDate(checkedAt),
    verificationEnvironment: environment as string | null,
    brokerAccountNumber: number as string | null,
    brokerAccountStatus: accountStatus as string | null,
    verificationMessage: message as string | null,
  });

const VERIFICATION_FIELDS: Record<string, (state: VerificationState) => unknown> = {
  status: (v) => v.status,
  checkedAt: (v) => v.checkedAt,
  environment: (v) => v.environment,
  brokerAccountNumber: (v) => v.brokerAccountNumber,
  brokerAccountStatus: (v) => v.brokerAccountStatus,
  message: (v) => v.message,
};

const CREDENTIAL_ARGS = new Set(['credentialType', 'includeInactive']);

/** A value the general path would not return as is (a null in a non-null field, a scalar that refuses it). */
class Unsupported extends Error {}

/** Builds one response value from its source (a row, or a verification state). */
type Build<S = Row> = (source: S) => unknown;

/** The SELECT list of one row type: expressions deduplicated, each read by slot. */
class Columns<Extra = never> {
  readonly items: (string | Extra)[] = [];
  slot(item: string | Extra): number {
    const at = typeof item === 'string' ? this.items.indexOf(item) : -1;
    if (at >= 0) return at;
    this.items.push(item);
    return this.items.length - 1;
  }
}

/** One `credentials` field of the selection: its own subquery, filtered by its arguments. */
interface CredentialsQuery {
  field: GraphQLField<unknown, unknown>;
  node: FieldNode;
  columns: Columns;
}

type Fragments = ReadonlyMap<string, FragmentDefinitionNode>;

/**
 * graphql-js' field collection (response keys in order of first appearance,
 * fragments expanded once), limited to what it means here without a
 * directive or another type; null when the selection leaves that.
 */
function collectFields(
  typeName: string,
  selectionSets: readonly SelectionSetNode[],
  fragments: Fragments,
): Map<string, FieldNode[]> | null {
  const fields = new Map<string, FieldNode[]>();
  const visited = new Set<string>();
  const walk = (set: SelectionSetNode): boolean => {
    for (const selection of set.selections) {
      if (selection.directives?.length) return false;
      if (selection.kind === Kind.FIELD) {
        const key = selection.alias?.value ?? selection.name.value;
        const nodes = fields.get(key);
        if (nodes) nodes.push(selection);
        else fields.set(key, [selection]);
        continue;
      }
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        if (selection.typeCondition && selection.typeCondition.name.value !== typeName) return false;
        if (!walk(selection.selectionSet)) return false;
        continue;
      }
      const name = selection.name.value;
      if (visited.has(name)) continue;
      visited.add(name);
      const fragment = fragments.get(name);
      if (!fragment || fragment.directives?.length || fragment.typeCondition.name.value !== typeName) return false;
      if (!walk(fragment.selectionSet)) return false;
    }
    return true;
  };
  for (const set of selectionSets) if (!walk(set)) return null;
  return fields;
}

/** The field of `typeName` that every node of a response key names (validation makes them agree). */
function fieldOf(schema: GraphQLSchema, typeName: string, nodes: readonly FieldNode[]) {
  const type = schema.getType(typeName);
  const name = nodes[0]?.name.value;
  if (!isObjectType(type) || !name || nodes.some((n) => n.name.value !== name)) return undefined;
  return type.getFields()[name];
}

/** What graphql-js does with a leaf value: null stays null where allowed, anything else goes through the scalar. */
function leaf<S>(type: GraphQLOutputType, value: (source: S) => unknown): Build<S> | null {
  const nullable = getNullableType(type);
  if (!isLeafType(nullable)) return null;
  const required = isNonNullType(type);
  return (source) => {
    const v = value(source);
    if (v == null) {
      if (required) throw new Unsupported();
      return null;
    }
    const out = nullable.serialize(v);
    if (out == null) throw new Unsupported();
    return out;
  };
}

const selectionsOf = (nodes: readonly FieldNode[]) =>
  nodes.map((n) => n.selectionSet).filter((s): s is SelectionSetNode => !!s);

/** An object from its entries, keys in selection order. */
function object<S>(entries: readonly [string, Build<S>][]): Build<S> {
  return (source) => {
    const out: Record<string, unknown> = {};
    for (const [key, build] of entries) out[key] = build(source);
    return out;
  };
}

function planVerification(
  schema: GraphQLSchema,
  nodes: readonly FieldNode[],
  fragments: Fragments,
): Build<VerificationState> | null {
  const fields = collectFields('CredentialVerification', selectionsOf(nodes), fragments);
  if (!fields) return null;
  const entries: [string, Build<VerificationState>][] = [];
  for (const [key, keyNodes] of fields) {
    const name = keyNodes[0]?.name.value;
    if (name === '__typename') {
      entries.push([key, () => 'CredentialVerification']);
      continue;
    }
    const field = fieldOf(schema, 'CredentialVerification', keyNodes);
    const read = name && VERIFICATION_FIELDS[name];
    const build = field && read && leaf(field.type, read);
    if (!build) return null;
    entries.push([key, build]);
  }
  return object(entries);
}

function planCredential(
  schema: GraphQLSchema,
  nodes: readonly FieldNode[],
  fragments: Fragments,
  columns: Columns,
): Build | null {
  const fields = collectFields('Credential', selectionsOf(nodes), fragments);
  if (!fields) return null;
  const entries: [string, Build][] = [];
  for (const [key, keyNodes] of fields) {
    const name = keyNodes[0]?.name.value;
    if (name === '__typename') {
      entries.push([key, () => 'Credential']);
      continue;
    }
    const field = fieldOf(schema, 'Credential', keyNodes);
    if (!field || keyNodes.some((n) => n.arguments?.length)) return null;
    if (name === 'verification') {
      if (getNamedType(field.type).name !== 'CredentialVerification' || !isNonNullType(field.type)) return null;
      const slots = VERIFICATION_SQL.map((sql) => columns.slot(sql));
      const build = planVerification(schema, keyNodes, fragments);
      if (!build) return null;
      entries.push([key, (row) => build(verificationState(slots.map((s) => row[s])))]);
      continue;
    }
    const spec = name ? CREDENTIAL_FIELDS[name] : undefined;
    if (!spec) return null;
    const slots = spec.sql.map((sql) => columns.slot(sql));
    const build = leaf(field.type, (row: Row) => spec.value(slots.map((s) => row[s])));
    if (!build) return null;
    entries.push([key, build]);
  }
  return object(entries);
}

function planAccount(
  schema: GraphQLSchema,
  nodes: readonly FieldNode[],
  fragments: Fragments,
  columns: Columns<CredentialsQuery>,
): Build | null {
  const fields = collectFields('Account', selectionsOf(nodes), fragments);
  if (!fields) return null;
  const entries: [string, Build][] = [];
  for (const [key, keyNodes] of fields) {
    const name = keyNodes[0]?.name.value;
    if (name === '__typename') {
      entries.push([key, () => 'Account']);
      continue;
    }
    const field = fieldOf(schema, 'Account', keyNodes);
    if (!field) return null;
    if (name === 'credentials') {
      const list = getNullableType(field.type);
      if (
        !isNonNullType(field.type) ||
        !isListType(list) ||
        !isNonNullType(list.ofType) ||
        getNamedType(list).name !== 'Credential' ||
        field.args.some((a) => !CREDENTIAL_ARGS.has(a.name))
      ) {
        return null;
      }
      const query: CredentialsQuery = { field, node: keyNodes[0] as FieldNode, columns: new Columns() };
      const build = planCredential(schema, keyNodes, fragments, query.columns);
      if (!build) return null;
      const slot = columns.slot(query);
      entries.push([key, (row) => (row[slot] as Row[]).map(build)]);
      continue;
    }
    const spec = name ? ACCOUNT_FIELDS[name] : undefined;
    if (!spec || keyNodes.some((n) => n.arguments?.length)) return null;
    const slots = spec.sql.map((sql) => columns.slot(sql));
    const build = leaf(field.type, (row: Row) => spec.value(slots.map((s) => row[s])));
    if (!build) return null;
    entries.push([key, build]);
  }
  return object(entries);
}

/** The filter of one credentials subquery, as its arguments ask. */
interface CredentialFilter {
  credentialType: string | null;
  includeInactive: boolean;
}

/** A tagged template's parts: the SQL around its bound values. */
type Template = TemplateStringsArray;

function template(parts: string[]): Template {
  return Object.assign([...parts], { raw: [...parts] }) as unknown as Template;
}

/**
 * The statement for one combination of filters, as template parts around
 * the bound values (each credentialType given, then the user id). Its text
 * comes from this file's fixed expressions only; every value is bound.
 */
function statement(columns: Columns<CredentialsQuery>, filters: readonly CredentialFilter[]): Template {
  const parts: string[] = [];
  let text = 'SELECT COALESCE(json_agg(json_build_array(';
  let q = 0;
  columns.items.forEach((item, i) => {
    if (i > 0) text += ', ';
    if (typeof item === 'string') {
      text += item;
      return;
    }
    const filter = filters[q++] as CredentialFilter;
    // Account.credentials: the relation (account_id, user_id), oldest first, then by id.
    text +=
      `(SELECT COALESCE(json_agg(json_build_array(${item.columns.items.join(', ')}) ORDER BY c.created_at, c.id), '[]') ` +
      'FROM "user_credentials" c WHERE c.account_id = a.id AND c.user_id = a.user_id';
    if (filter.credentialType !== null) {
      parts.push(`${text} AND c.credential_type = `);
      text = '';
    }
    if (!filter.includeInactive) text += ' AND c.is_active';
    text += ')';
  });
  // Query.accounts: the viewer's, oldest first.
  parts.push(`${text}) ORDER BY a.created_at), '[]')::text AS data FROM "user_accounts" a WHERE a.user_id = `, '');
  return template(parts);
}

export interface FastRead {
  /** The response key of `accounts`, and its nodes (where an error is located). */
  key: string;
  nodes: readonly FieldNode[];
  /** Runs the read on the operation's transaction; undefined to fall back to the general path. */
  run(
    db: ScopedDb,
    userId: string,
    variables: Record<string, unknown> | null | undefined,
  ): Promise<ExecutionResult | undefined>;
}

/** The fast read of an operation, or null when it must run through graphql-js. */
export function planFastRead(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName?: string | null,
): FastRead | null {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== 'query' || operation.directives?.length) return null;
  const queryType = schema.getQueryType();
  if (!queryType) return null;
  const fragments = new Map(
    document.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  const root = collectFields(queryType.name, [operation.selectionSet], fragments);
  if (root?.size !== 1) return null;
  const [[key, nodes]] = [...root] as [[string, FieldNode[]]];
  const field = fieldOf(schema, queryType.name, nodes);
  const list = field && getNullableType(field.type);
  if (
    field?.name !== 'accounts' ||
    field.args.length > 0 ||
    !isNonNullType(field.type) ||
    !isListType(list) ||
    !isNonNullType(list.ofType) ||
    getNamedType(list).name !== 'Account'
  ) {
    return null;
  }
  const columns = new Columns<CredentialsQuery>();
  const account = planAccount(schema, nodes, fragments, columns);
  if (!account) return null;
  const queries = columns.items.filter((c): c is CredentialsQuery => typeof c !== 'string');
  const statements = new Map<string, Template>();
  const variableDefinitions = operation.variableDefinitions ?? [];

  return {
    key,
    nodes,
    async run(db, userId, variables) {
      const coerced = coerceVariables(schema, operation, variableDefinitions.length, variables);
      if (!coerced) return undefined;
      const filters = queries.map(({ field: f, node }): CredentialFilter => {
        const args = getArgumentValues(f, node, coerced);
        const type = args.credentialType;
        return { credentialType: type == null ? null : (type as string), includeInactive: !!args.includeInactive };
      });
      const variant = filters.map((f) => `${f.credentialType === null ? 0 : 1}${f.includeInactive ? 1 : 0}`).join('');
      let sql = statements.get(variant);
      if (!sql) {
        sql = statement(columns, filters);
        statements.set(variant, sql);
      }
      const values = filters.flatMap((f) => (f.credentialType === null ? [] : [f.credentialType]));
      let data: string | null;
      try {
        data = await selectText(db, sql, ...values, userId);
      } catch (error) {
        // As graphql-js reports a failed root field that cannot be null.
        return { data: null, errors: [locatedError(error, nodes, [key])] };
      }
      try {
        const accounts = JSON.parse(data ?? '[]') as Row[];
        return { data: { [key]: accounts.map(account) } };
      } catch (error) {
        if (error instanceof Unsupported) return undefined;
        throw error;
      }
    },
  };
}

const NO_VARIABLES = Object.freeze({}) as Record<string, unknown>;

/** The operation's variables as graphql-js coerces them; null when they do not (it then reports why). */
function coerceVariables(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  declared: number,
  variables: Record<string, unknown> | null | undefined,
): Record<string, unknown> | null {
  if (declared === 0) return NO_VARIABLES;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {}, { maxErrors: 1 });
  return coerced.errors ? null : coerced.coerced;
}

/**
 * The plugin: placed before the RLS plugin, so that the read runs inside
 * the operation's transaction, which that plugin opens around it. Without
 * a transaction (no viewer) the operation takes the general path.
 */
export function useFastRead(): Plugin<GraphQLContext> {
  const planFor = perOperation(({ schema, document, operationName }: OperationKey & { schema: GraphQLSchema }) =>
    planFastRead(schema, document, operationName),
  );
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const plan = planFor(args);
      if (!plan) return;
      setExecuteFn(async (executeArgs) => {
        const ctx = executeArgs.contextValue as GraphQLContext;
        if (!ctx.viewer || ctx.db === dbOutsideTransaction) return executeFn(executeArgs);
        const result = await plan.run(
          ctx.db,
          ctx.viewer.id,
          executeArgs.variableValues as Record<string, unknown> | null | undefined,
        );
        return result ?? executeFn(executeArgs);
      });
    },
  };
}
