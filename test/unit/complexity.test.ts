// The complexity measure (src/schema/complexity.ts, src/graphql/complexity.ts)
// against the queries clients really send: every operation of the SDK, every
// query the README and the pages of docs/ show, and every query docs/graphql.md
// describes with all of its fields selected at its largest page, all within the
// default limit with room to spare; queries that multiply pages are over it.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type ASTNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  type NamedTypeNode,
  type OperationDefinitionNode,
  parse,
  print,
  typeFromAST,
  validate,
  visit,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { QUERY_COMPLEXITY_DEFAULT, REQUEST_TRANSACTION_DEFAULTS } from '../../src/config/load.ts';
import { ACTIVE_GRANTS_PER_CREDENTIAL_MAX } from '../../src/domain/engine-grants.ts';
import { operationComplexity } from '../../src/graphql/complexity.ts';
import { UNCAPPED_LIST_MULTIPLIER } from '../../src/schema/complexity.ts';
import { ENGINE_GRANTS_MAX } from '../../src/schema/engine-grant.ts';
import { schema } from '../../src/schema/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const LIMIT = QUERY_COMPLEXITY_DEFAULT;
const CAP = REQUEST_TRANSACTION_DEFAULTS.maxCredentialsPerAccount;
const LARGEST_PAGE = 100;

/**
 * The SDK's operations run on every screen of a front end: each stays under a
 * tenth of the default limit, so an operator may raise
 * MAX_CREDENTIALS_PER_ACCOUNT tenfold (Accounts grows with it) or lower
 * MAX_QUERY_COMPLEXITY tenfold before the SDK's own operations are refused.
 */
const SDK_SHARE = 0.1;
/**
 * The documented largest queries (every field, every list at its cap or
 * largest page) keep a quarter of the limit spare: room for a few fields
 * added to Credential, CredentialEvent or EngineGrant (one scalar on events
 * adds CAP × 100 = 10,000 to the largest, one on grants CAP × 25 = 2,500)
 * before the default must move.
 */
const DOCUMENTED_SHARE = 0.75;

const ctx = (credentialsPerAccount = CAP) => ({ limits: { credentialsPerAccount } });

/** A valid value of an input type: every `first` the largest page, required input fields filled. */
function sample(type: GraphQLInputType, name: string): unknown {
  if (isNonNullType(type)) return sample(type.ofType, name);
  if (isListType(type)) return [sample(type.ofType, name)];
  if (isInputObjectType(type)) {
    return Object.fromEntries(
      Object.values(type.getFields())
        .filter((f) => isNonNullType(f.type))
        .map((f) => [f.name, sample(f.type, f.name)]),
    );
  }
  if (isEnumType(type)) return type.getValues()[0]?.value;
  const scalars: Record<string, unknown> = {
    UUID: '00000000-0000-4000-8000-000000000000',
    String: 'x',
    Int: name === 'first' ? LARGEST_PAGE : 1,
    Boolean: true,
    DateTime: '2030-01-01T00:00:00.000Z',
    Decimal: '1',
  };
  if (!(type.name in scalars)) throw new Error(`no sample value for ${type.name}`);
  return scalars[type.name];
}

/** Values for every variable of the document's operation (`first` at the largest page). */
function variablesFor(document: DocumentNode): Record<string, unknown> {
  const operation = document.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION) as OperationDefinitionNode;
  return Object.fromEntries(
    (operation.variableDefinitions ?? []).map((v) => [
      v.variable.name.value,
      sample(typeFromAST(schema, v.type as NamedTypeNode) as GraphQLInputType, v.variable.name.value),
    ]),
  );
}

function complexityOf(text: string | DocumentNode): number {
  const document = typeof text === 'string' ? parse(text) : text;
  expect(validate(schema, document), print(document)).toEqual([]);
  const complexity = operationComplexity({
    schema,
    document,
    variableValues: variablesFor(document),
    contextValue: ctx(),
  });
  if (complexity === undefined) throw new Error(`no complexity for ${print(document)}`);
  return complexity;
}

/** Every field of `type`, recursively, without going back to a type already on the path (back-links). */
function selectAll(type: GraphQLNamedType, path: string[] = []): string {
  if (!isObjectType(type)) return '';
  const fields = Object.values(type.getFields()).flatMap((field) => {
    const named = getNamedType(field.type);
    const args = argumentsFor(field);
    if (!isObjectType(named)) return [`${field.name}${args}`];
    if (path.includes(named.name)) return [];
    return [`${field.name}${args} { ${selectAll(named, [...path, type.name])} }`];
  });
  return fields.join(' ');
}

/** Required arguments get a value, and every `first` the largest page. */
function argumentsFor(field: GraphQLField<unknown, unknown>): string {
  const values = field.args.flatMap((arg) => {
    if (arg.name === 'first') return [`first: ${LARGEST_PAGE}`];
    if (!isNonNullType(arg.type)) return [];
    const named = getNamedType(arg.type);
    if (named.name === 'UUID') return [`${arg.name}: "00000000-0000-4000-8000-000000000000"`];
    throw new Error(`no sample value for ${field.name}(${arg.name}: ${named.name})`);
  });
  return values.length ? `(${values.join(', ')})` : '';
}

/** The documented queries and mutations, one per root field, with everything selected (inputs as variables). */
function documentedOperations(): { name: string; text: string }[] {
  const roots = [schema.getQueryType(), schema.getMutationType()] as GraphQLObjectType[];
  return roots.flatMap((root) =>
    Object.values(root.getFields()).map((field) => {
      const keyword = root === schema.getMutationType() ? 'mutation' : 'query';
      const inputs = field.args.filter((a) => a.name !== 'id' && isNonNullType(a.type));
      const definitions = inputs.map((a) => `$${a.name}: ${a.type.toString()}`).join(', ');
      const ownArgs = argumentsFor({ ...field, args: field.args.filter((a) => !inputs.includes(a)) });
      const passed = inputs.map((a) => `${a.name}: $${a.name}`);
      const args = [ownArgs.slice(1, -1), ...passed].filter(Boolean).join(', ');
      const named = getNamedType(field.type);
      const selection = isObjectType(named) ? ` { ${selectAll(named, [root.name])} }` : '';
      const text = `${keyword}${definitions ? `(${definitions})` : ''} { ${field.name}${args ? `(${args})` : ''}${selection} }`;
      return { name: `${keyword} ${field.name}`, text };
    }),
  );
}

/** The largest query a user may legitimately send: every field of every account, credential and a full page of events. */
const LARGEST = `{ accounts { ${selectAll(schema.getType('Account') as GraphQLNamedType, ['Query'])} } }`;

async function sdkOperations(): Promise<{ name: string; document: DocumentNode }[]> {
  const dir = path.join(ROOT, 'src/sdk/operations');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.graphql'));
  const all = parse((await Promise.all(files.map((f) => readFile(path.join(dir, f), 'utf8')))).join('\n'));
  const fragments = new Map(
    all.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  /** The fragments `node` spreads, and theirs. */
  const used = (node: ASTNode, found = new Set<FragmentDefinitionNode>()) => {
    visit(node, {
      FragmentSpread(spread) {
        const fragment = fragments.get(spread.name.value) as FragmentDefinitionNode;
        if (!found.has(fragment)) used(fragment, found.add(fragment));
      },
    });
    return found;
  };
  return all.definitions
    .filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)
    .map((operation) => ({
      name: operation.name?.value ?? '(anonymous)',
      document: { kind: Kind.DOCUMENT, definitions: [operation, ...used(operation)] },
    }));
}

/** The documents whose queries are read: the README and every page of docs/. */
async function documents(): Promise<string[]> {
  const pages = await readdir(path.join(ROOT, 'docs'), { recursive: true });
  return ['README.md', ...pages.filter((p) => p.endsWith('.md')).map((p) => path.join('docs', p))];
}

/** GraphQL in the documents: the curl examples' "query" strings and inline code that is a whole query. */
async function documentedQueries(): Promise<{ file: string; text: string }[]> {
  const found: { file: string; text: string }[] = [];
  for (const file of await documents()) {
    const markdown = await readFile(path.join(ROOT, file), 'utf8');
    const fromJson = [...markdown.matchAll(/"query"\s*:\s*("(?:[^"\\]|\\.)*")/g)].map(
      (m) => JSON.parse(m[1] as string) as string,
    );
    const inline = [...markdown.matchAll(/`((?:query|mutation)?\s*\{ [^`]*\})`/g)].map((m) => m[1] as string);
    for (const text of [...fromJson, ...inline]) if (!text.includes('…')) found.push({ file, text });
  }
  return found;
}

const table: string[] = [];
const report = (name: string, complexity: number) =>
  table.push(
    `${name.padEnd(40)} ${complexity.toLocaleString('en-US').padStart(10)}  ${((100 * complexity) / LIMIT).toFixed(2).padStart(6)} %`,
  );

describe('query complexity', () => {
  it('declares a length for every list of objects (a list without one counts as uncapped and is refused)', () => {
    const uncapped: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue;
      for (const field of Object.values(type.getFields())) {
        let t = field.type;
        if (isNonNullType(t)) t = t.ofType;
        if (!isListType(t) || !isObjectType(getNamedType(t))) continue;
        const declared = field.extensions?.complexity as { multiplier?: number } | undefined;
        if (typeof declared === 'object' && declared.multiplier === UNCAPPED_LIST_MULTIPLIER) {
          uncapped.push(`${type.name}.${field.name}`);
        }
      }
    }
    expect(uncapped, 'add `complexity: cappedList(MAX)` (src/schema/complexity.ts) to these lists').toEqual([]);
  });

  it('counts the page asked for, as a literal or a variable, and the default page when absent', () => {
    const events = (first: string, variables: Record<string, unknown> = {}) =>
      operationComplexity({
        schema,
        document: parse(
          `query($first: Int) { credentialEvents${first} { edges { cursor node { id action } } pageInfo { hasNextPage } } }`,
        ),
        variableValues: variables,
        contextValue: ctx(),
      });
    // field 1 + first × (cursor 1 + node 1 + 2 fields); pageInfo is free
    expect(events('(first: 100)')).toBe(1 + 100 * 4);
    expect(events('(first: $first)', { first: 100 })).toBe(1 + 100 * 4);
    expect(events('(first: $first)', { first: 7 })).toBe(1 + 7 * 4);
    expect(events('')).toBe(1 + 20 * 4);
    expect(events('(first: $first)')).toBe(1 + 20 * 4);
    // Out of range: refused by the resolver (BAD_USER_INPUT) before any work; counted as the nearest valid page.
    expect(events('(first: 1000000)')).toBe(1 + 100 * 4);
    // Variables that do not fit: left to execution, which refuses them before any resolver.
    expect(events('(first: $first)', { first: 'many' })).toBeUndefined();
  });

  it('counts Account.credentials at MAX_CREDENTIALS_PER_ACCOUNT, not nesting depth', () => {
    expect(complexityOf('{ accounts { credentials { id } } }')).toBe(1 + 1 * (1 + CAP * 1));
    const document = parse('{ accounts { credentials { id } } }');
    const at = (credentialsPerAccount: number) =>
      operationComplexity({ schema, document, variableValues: {}, contextValue: ctx(credentialsPerAccount) });
    expect(at(10)).toBe(1 + 1 + 10);
    // Deep single objects cost what they select, no more.
    expect(complexityOf('{ credential(id: "00000000-0000-4000-8000-000000000000") { account { id } } }')).toBe(3);
  });

  it("counts a grant's symbols as one column of its row, and haltEngineAccess at the grants that can be in force", () => {
    const id = '"00000000-0000-4000-8000-000000000000"';
    expect(complexityOf(`{ credential(id: ${id}) { engineGrants { guardrails { symbols } } } }`)).toBe(
      1 + 1 + ENGINE_GRANTS_MAX * (1 + 1),
    );
    expect(complexityOf('mutation { haltEngineAccess { id } }')).toBe(1 + CAP * ACTIVE_GRANTS_PER_CREDENTIAL_MAX);
    expect(complexityOf(`mutation { haltEngineAccess(credentialId: ${id}) { id } }`)).toBe(
      1 + ACTIVE_GRANTS_PER_CREDENTIAL_MAX,
    );
  });

  it(`keeps every SDK operation at the largest page under ${SDK_SHARE * 100} % of the default limit`, async () => {
    const operations = await sdkOperations();
    expect(operations.length).toBeGreaterThanOrEqual(12);
    for (const { name, document } of operations) {
      const complexity = complexityOf(document);
      report(`SDK ${name}`, complexity);
      expect(complexity, name).toBeLessThanOrEqual(LIMIT * SDK_SHARE);
    }
  });

  it('keeps every query of the README and docs/ under the limit, but the one docs/graphql.md shows refused', async () => {
    const refused = '{ accounts { credentials { account { credentials { account { credentials { id } } } } } } }';
    const queries = await documentedQueries();
    expect(queries).toContainEqual({ file: 'docs/graphql.md', text: refused });
    expect(queries.filter((q) => q.file === 'README.md').length).toBeGreaterThanOrEqual(3);
    expect(queries.length).toBeGreaterThanOrEqual(20);
    for (const [i, { file, text }] of queries.entries()) {
      const complexity = complexityOf(text);
      report(`${file} #${i + 1}`, complexity);
      if (text === refused) expect(complexity).toBeGreaterThan(LIMIT);
      else expect(complexity, `${file}: ${text}`).toBeLessThanOrEqual(LIMIT * SDK_SHARE);
    }
  });

  it(`keeps every documented query, all fields at first: 100, under ${DOCUMENTED_SHARE * 100} % of the limit`, () => {
    for (const { name, text } of documentedOperations()) {
      const complexity = complexityOf(text);
      report(`documented ${name}`, complexity);
      expect(complexity, text).toBeLessThanOrEqual(LIMIT * DOCUMENTED_SHARE);
    }
    const largest = complexityOf(LARGEST);
    report('largest legitimate (accounts, all)', largest);
    expect(largest).toBeGreaterThan(LIMIT / 2);
    expect(largest).toBeLessThanOrEqual(LIMIT * DOCUMENTED_SHARE);
  });

  it('puts queries that multiply pages over the limit', () => {
    const all = selectAll(schema.getType('Account') as GraphQLNamedType, ['Query']);
    const twice = `{ a: accounts { ${all} } b: accounts { ${all} } }`;
    const loop = '{ accounts { credentials { account { credentials { account { credentials { id } } } } } } }';
    for (const [name, text] of [
      ['largest, twice (aliases)', twice],
      ['back-link loop, three levels', loop],
    ] as const) {
      const complexity = complexityOf(text);
      report(name, complexity);
      expect(complexity, text).toBeGreaterThan(LIMIT);
    }
  });

  it('prints the table', () => {
    process.stdout.write(
      `complexity against the default limit of ${LIMIT.toLocaleString('en-US')}:\n${table.join('\n')}\n`,
    );
  });
});
