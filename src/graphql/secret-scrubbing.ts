// Keeps secrets that a client sent out of the errors it gets back.
//
// GraphQL's own errors quote input values: a missing field in StoreCredentialInput
// prints the whole input object, apiKey and secretKey included, and a value
// of the wrong type is printed as found. No library strips these, so this
// plugin notes the secret values of each request and removes them from every
// error message.
//
// Which values are secret follows the schema, not names in the request: an
// input field marked with SECRET_INPUT (StoreCredentialInput.apiKey, ...)
// holds one, so does a variable used there (`apiKey: $k`) whatever it is
// called or whatever was sent in it, and so does a field a secret-holding
// input does not define (most likely a misspelt secret, printed back as
// sent). Literals in a document that does not even parse are found by field
// name instead.
import {
  type DocumentNode,
  type ExecutionResult,
  GraphQLError,
  type GraphQLInputField,
  type GraphQLInputType,
  type GraphQLSchema,
  getNamedType,
  isInputObjectType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  print,
  TypeInfo,
  typeFromAST,
  type ValueNode,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** Extensions of an input field that holds a secret (Pothos: `extensions: SECRET_INPUT`). */
export const SECRET_INPUT = { secret: true } as const;

const isSecretField = (field: { extensions?: Readonly<Record<string, unknown>> } | null | undefined) =>
  field?.extensions?.secret === true;

/**
 * Values at least this long are removed wherever they appear. Shorter ones
 * would match ordinary words, so they are removed only where GraphQL prints
 * them as a quoted string (how it echoes input values).
 */
const MIN_BARE_LENGTH = 4;
const REDACTED = '[redacted]';

/** Every scalar inside a value as sent, as GraphQL would print it. */
function leaves(value: unknown, into: Set<string>): void {
  if (value === null || value === undefined) return;
  if (typeof value === 'object') for (const v of Object.values(value)) leaves(v, into);
  else into.add(String(value));
}

/** Whether a value of this input type can hold a secret somewhere. */
function holdsSecrets(type: GraphQLInputType, seen = new Set<string>()): boolean {
  const named = getNamedType(type);
  if (!isInputObjectType(named) || seen.has(named.name)) return false;
  seen.add(named.name);
  return Object.values(named.getFields()).some((f) => isSecretField(f) || holdsSecrets(f.type, seen));
}

/** The secret values inside a variable's value, walked along its declared type. */
function secretsAlong(value: unknown, type: GraphQLInputType, into: Set<string>): void {
  if (value === null || value === undefined) return;
  const inner = isNonNullType(type) ? type.ofType : type;
  if (isListType(inner)) {
    for (const item of Array.isArray(value) ? value : [value]) secretsAlong(item, inner.ofType, into);
    return;
  }
  if (!isInputObjectType(inner)) return;
  if (typeof value !== 'object' || Array.isArray(value)) {
    // Not even the right shape: GraphQL prints it whole.
    if (holdsSecrets(inner)) leaves(value, into);
    return;
  }
  const fields = inner.getFields();
  for (const [name, fieldValue] of Object.entries(value)) {
    const field: GraphQLInputField | undefined = fields[name];
    if (!field || isSecretField(field)) leaves(fieldValue, into);
    else secretsAlong(fieldValue, field.type, into);
  }
}

/** What a document says about where secrets go; computed once per document. */
interface SecretPositions {
  /** Literal values written at a secret position. */
  literals: string[];
  /** Variables that may carry a secret: used at a secret position, or of a type that holds one. */
  variables: { name: string; type: GraphQLInputType | undefined; whole: boolean }[];
}

export function secretPositions(schema: GraphQLSchema, document: DocumentNode): SecretPositions {
  const literals = new Set<string>();
  const wholeVariables = new Set<string>();
  const declared = new Map<string, GraphQLInputType | undefined>();
  const mark = (node: ValueNode): void => {
    if (node.kind === Kind.VARIABLE) wholeVariables.add(node.name.value);
    else if (node.kind === Kind.LIST) node.values.forEach(mark);
    else if (node.kind === Kind.OBJECT) for (const field of node.fields) mark(field.value);
    else if (node.kind === Kind.STRING) literals.add(node.value);
    else if (node.kind !== Kind.NULL) literals.add(print(node));
  };
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      VariableDefinition(node) {
        declared.set(node.variable.name.value, typeFromAST(schema, node.type) as GraphQLInputType | undefined);
      },
      Argument(node) {
        if (isSecretField(typeInfo.getArgument())) mark(node.value);
      },
      ObjectField(node) {
        const parent = getNamedType(typeInfo.getParentInputType());
        if (!isInputObjectType(parent)) return;
        const field = parent.getFields()[node.name.value];
        if (!field ? holdsSecrets(parent) : isSecretField(field)) mark(node.value);
      },
    }),
  );
  const variables = [...declared]
    .filter(([name, type]) => wholeVariables.has(name) || (type !== undefined && holdsSecrets(type)))
    .map(([name, type]) => ({ name, type, whole: wholeVariables.has(name) }));
  return { literals: [...literals], variables };
}

/** The secret values of one request, given where its document puts secrets. */
export function secretValues(positions: SecretPositions, variables: unknown): string[] {
  const found = new Set(positions.literals);
  const given = (variables ?? {}) as Record<string, unknown>;
  for (const { name, type, whole } of positions.variables) {
    if (whole || !type) leaves(given[name], found);
    else secretsAlong(given[name], type, found);
  }
  return [...found].filter((s) => s.length > 0);
}

/**
 * Literals written as `field: value` for the given field names, read from the
 * raw text: for documents that do not parse (then nothing else is known).
 */
export function secretLiterals(query: unknown, fieldNames: readonly string[]): string[] {
  // Not text: the envelope check (envelope.ts) refuses it; nothing to find here.
  if (typeof query !== 'string' || !query || fieldNames.length === 0) return [];
  const literal = new RegExp(
    `\\b(?:${fieldNames.join('|')})\\s*:\\s*("""[\\s\\S]*?"""|"(?:[^"\\\\]|\\\\.)*"|[-+\\w.]+)`,
    'g',
  );
  const found = new Set<string>();
  for (const [, value] of query.matchAll(literal)) {
    if (!value) continue;
    if (value.startsWith('"""')) found.add(value.slice(3, -3));
    else if (value.startsWith('"')) {
      try {
        found.add(JSON.parse(value) as string);
      } catch {
        found.add(value.slice(1, -1));
      }
    } else found.add(value);
  }
  return [...found].filter((s) => s.length > 0);
}

export function scrub(message: string, secrets: string[]): string {
  let out = message;
  for (const secret of secrets) {
    // GraphQL prints strings JSON-quoted; a long secret may also appear as sent.
    const quoted = JSON.stringify(secret);
    out = out.split(quoted).join(`"${REDACTED}"`);
    if (secret.length < MIN_BARE_LENGTH) continue;
    for (const form of new Set([secret, quoted.slice(1, -1)])) out = out.split(form).join(REDACTED);
  }
  return out;
}

function scrubResult(result: ExecutionResult, secrets: string[]): ExecutionResult {
  if (!result.errors?.length) return result;
  return {
    ...result,
    errors: result.errors.map((error) => {
      const message = scrub(error.message, secrets);
      if (message === error.message) return error;
      return new GraphQLError(message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        extensions: error.extensions,
      });
    }),
  };
}

/** The names of the schema's secret input fields and arguments. */
function secretFieldNames(schema: GraphQLSchema): string[] {
  const names = new Set<string>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) if (isSecretField(field)) names.add(field.name);
    } else if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields()))
        for (const arg of field.args) if (isSecretField(arg)) names.add(arg.name);
    }
  }
  return [...names];
}

export function useSecretScrubbing(schema: GraphQLSchema): Plugin {
  const fieldNames = secretFieldNames(schema);
  const secretsByRequest = new WeakMap<Request, string[]>();
  // Yoga hands the same DocumentNode back for a query it has parsed before.
  const positionsByDocument = new WeakMap<DocumentNode, SecretPositions>();
  const note = (request: Request, secrets: string[]) => {
    if (secrets.length === 0) return;
    secretsByRequest.set(request, [...(secretsByRequest.get(request) ?? []), ...secrets]);
  };
  return {
    onParams({ params, request }) {
      note(request, secretLiterals(params.query, fieldNames));
    },
    onValidate({ params: { documentAST }, context }) {
      const { request, params } = context as { request: Request; params?: { variables?: unknown } };
      let positions = positionsByDocument.get(documentAST);
      if (!positions) {
        positions = secretPositions(schema, documentAST);
        positionsByDocument.set(documentAST, positions);
      }
      if (positions.literals.length > 0 || positions.variables.length > 0) {
        note(request, secretValues(positions, params?.variables));
      }
    },
    onResultProcess({ request, result, setResult }) {
      const secrets = secretsByRequest.get(request);
      if (!secrets) return;
      if (Array.isArray(result)) setResult(result.map((r) => scrubResult(r, secrets)));
      else if (!(Symbol.asyncIterator in result)) setResult(scrubResult(result as ExecutionResult, secrets));
    },
  };
}
