// The accounts read's shortcut (src/graphql/fast-read.ts) against the general
// path (graphql-js executing the Pothos schema on Prisma), on generated data
// and generated selections of the shape it takes: the two answers must be the
// same JSON, byte for byte (values, nulls, key order). Both run in the same
// RLS transaction, on the database the run selected. Documents it must not
// take fall back, and so do variables that do not coerce.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { execute, parse, validate } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import type { ScopedDb } from '../../src/db/request-transaction.ts';
import type { GraphQLContext } from '../../src/graphql/context.ts';
import { planFastRead } from '../../src/graphql/fast-read.ts';
import { createLogger } from '../../src/logger.ts';
import { schema } from '../../src/schema/index.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';

let tdb: TestDatabase;
let db: Database;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

// ---------------------------------------------------------------------------
// Data: one user with no account or one, and its credentials. Few distinct
// timestamps, so that ties (ordered by id) happen.

const TIMES = ['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.001Z', '2026-06-30T23:59:59.999Z'].map(
  (t) => new Date(t),
);
const text = (max: number) => fc.string({ unit: 'binary', maxLength: max }).map((s) => s.replace(/\0/g, ''));

const verificationArb = fc.oneof(
  fc.record({
    status: fc.constant('UNVERIFIED'),
    checkedAt: fc.constant(null),
    environment: fc.constant(null),
    number: fc.constant(null),
    accountStatus: fc.constant(null),
    message: fc.option(text(200)),
  }),
  fc.record({
    status: fc.constantFrom('INVALID', 'UNREACHABLE'),
    checkedAt: fc.constantFrom(...TIMES),
    environment: fc.constant(null),
    number: fc.constant(null),
    accountStatus: fc.constant(null),
    message: fc.option(text(200)),
  }),
  fc.record({
    status: fc.constant('VERIFIED'),
    checkedAt: fc.constantFrom(...TIMES),
    environment: fc.constantFrom(null, 'PAPER', 'LIVE'),
    number: fc.option(text(16)),
    accountStatus: fc.option(text(64)),
    message: fc.option(text(200)),
  }),
);

const credentialArb = fc.record({
  credentialType: fc.constantFrom('alpaca', 'other'),
  nickname: fc.option(text(100)),
  apiKeyHint: text(16),
  isActive: fc.boolean(),
  createdAt: fc.constantFrom(...TIMES),
  updatedAt: fc.constantFrom(...TIMES),
  verification: verificationArb,
});

const dataArb = fc.option(
  fc.record({
    accountName: text(100),
    isActive: fc.boolean(),
    createdAt: fc.constantFrom(...TIMES),
    updatedAt: fc.constantFrom(...TIMES),
    credentials: fc.array(credentialArb, { maxLength: 6 }),
  }),
  { freq: 5 },
);

type Data = typeof dataArb extends fc.Arbitrary<infer T> ? NonNullable<T> : never;

/** Stores a user and its data as the database's owner (seeding only; the reads run as the user). */
async function seed(data: Data | null): Promise<string> {
  const userId = `fast-read-${randomUUID()}`;
  const c = db.unscopedClient;
  await c.user.create({ data: { id: userId, email: `${userId}@example.test`, name: userId } });
  if (!data) return userId;
  const account = await c.userAccount.create({
    data: {
      userId,
      accountName: data.accountName,
      isActive: data.isActive,
      createdAt: data.createdAt,
      updatedAt: data.updatedAt,
    },
  });
  for (const cr of data.credentials) {
    await c.credential.create({
      data: {
        accountId: account.id,
        userId,
        credentialType: cr.credentialType,
        nickname: cr.nickname,
        apiKeyCiphertext: Buffer.from('ct-api'),
        secretKeyCiphertext: Buffer.from('ct-secret'),
        keyId: 'k1',
        apiKeyHint: cr.apiKeyHint,
        isActive: cr.isActive,
        createdAt: cr.createdAt,
        updatedAt: cr.updatedAt,
        verificationStatus: cr.verification.status,
        verificationCheckedAt: cr.verification.checkedAt,
        verificationEnvironment: cr.verification.environment,
        brokerAccountNumber: cr.verification.number,
        brokerAccountStatus: cr.verification.accountStatus,
        verificationMessage: cr.verification.message,
      },
    });
  }
  return userId;
}

// ---------------------------------------------------------------------------
// Selections: fields in any order, aliased or not, repeated, inside inline or
// named fragments; credentials with its arguments as literals, variables or
// left out, once or under several response keys (a key repeated merges).

const ACCOUNT_LEAVES = ['id', 'userId', 'accountName', 'isActive', 'createdAt', 'updatedAt', '__typename'];
const CREDENTIAL_LEAVES = [
  'id',
  'accountId',
  'credentialType',
  'nickname',
  'apiKeyHint',
  'isActive',
  'createdAt',
  'updatedAt',
  '__typename',
];
const VERIFICATION_LEAVES = [
  'status',
  'checkedAt',
  'environment',
  'brokerAccountNumber',
  'brokerAccountStatus',
  'message',
  '__typename',
];

interface Built {
  fragments: string[];
  variables: string[];
  values: Record<string, unknown>;
}

type Wrap = 'plain' | 'inline' | 'typed' | 'named';
const wrapArb = fc.constantFrom<Wrap>('plain', 'plain', 'inline', 'typed', 'named');

/** A selection, possibly inside a fragment on `type`. */
function wrap(selection: string, how: Wrap, type: string, built: Built): string {
  if (how === 'inline') return `... { ${selection} }`;
  if (how === 'typed') return `... on ${type} { ${selection} }`;
  if (how === 'named') {
    const name = `F${built.fragments.length}`;
    built.fragments.push(`fragment ${name} on ${type} { ${selection} }`);
    return `...${name}`;
  }
  return selection;
}

// An alias is tied to its field name, so equal response keys always name the same field.
const leafArb = (names: string[]) =>
  fc.record({ name: fc.constantFrom(...names), aliased: fc.boolean(), wrap: wrapArb });
const leaf = (l: { name: string; aliased: boolean }) => (l.aliased ? `${l.name}_a: ${l.name}` : l.name);

const verificationSelectionArb = fc.record({
  leaves: fc.array(leafArb(VERIFICATION_LEAVES), { minLength: 1, maxLength: 5 }),
  aliased: fc.boolean(),
  wrap: wrapArb,
});

const credentialSelectionArb = fc.record({
  leaves: fc.array(leafArb(CREDENTIAL_LEAVES), { minLength: 1, maxLength: 6 }),
  verification: fc.array(verificationSelectionArb, { maxLength: 2 }),
});

type ArgSource =
  | { kind: 'absent' }
  | { kind: 'literal'; value: unknown }
  | { kind: 'variable'; value: unknown; defaultValue?: unknown };
const typeArgArb: fc.Arbitrary<ArgSource> = fc.oneof(
  fc.constant({ kind: 'absent' as const }),
  fc.record({ kind: fc.constant('literal' as const), value: fc.constantFrom(null, 'alpaca', 'other', 'none', '') }),
  fc.record({
    kind: fc.constant('variable' as const),
    value: fc.constantFrom(undefined, null, 'alpaca', 'other', ''),
  }),
);
const inactiveArgArb: fc.Arbitrary<ArgSource> = fc.oneof(
  fc.constant({ kind: 'absent' as const }),
  fc.record({ kind: fc.constant('literal' as const), value: fc.constantFrom(null, true, false) }),
  fc.record({
    kind: fc.constant('variable' as const),
    value: fc.constantFrom(undefined, null, true, false),
    defaultValue: fc.constantFrom(undefined, true, false),
  }),
);

// Response keys of credentials and their arguments: a key used twice has the same arguments.
const credentialsArb = fc.record({
  keys: fc.array(
    fc.record({ key: fc.constantFrom('credentials', 'c1', 'c2'), selection: credentialSelectionArb, wrap: wrapArb }),
    { maxLength: 3 },
  ),
  args: fc.dictionary(
    fc.constantFrom('credentials', 'c1', 'c2'),
    fc.record({ credentialType: typeArgArb, includeInactive: inactiveArgArb }),
  ),
});

const operationArb = fc.record({
  accountLeaves: fc.array(leafArb(ACCOUNT_LEAVES), { maxLength: 6 }),
  credentials: credentialsArb,
  accountsAlias: fc.constantFrom(undefined, 'mine'),
  rootWrap: wrapArb,
});

function argument(name: string, source: ArgSource, key: string, type: string, built: Built): string | undefined {
  if (source.kind === 'absent') return undefined;
  if (source.kind === 'literal') return `${name}: ${JSON.stringify(source.value)}`;
  const variable = `${name}_${key}`;
  if (!built.variables.some((v) => v.startsWith(`$${variable}:`))) {
    const defaultValue = source.defaultValue === undefined ? '' : ` = ${JSON.stringify(source.defaultValue)}`;
    built.variables.push(`$${variable}: ${type}${defaultValue}`);
    if (source.value !== undefined) built.values[variable] = source.value;
  }
  return `${name}: $${variable}`;
}

type Operation = typeof operationArb extends fc.Arbitrary<infer T> ? T : never;

function buildDocument(op: Operation) {
  const built: Built = { fragments: [], variables: [], values: {} };
  const selections = op.accountLeaves.map((l) => wrap(leaf(l), l.wrap, 'Account', built));
  for (const { key, selection, wrap: how } of op.credentials.keys) {
    const args = op.credentials.args[key] ?? {
      credentialType: { kind: 'absent' },
      includeInactive: { kind: 'absent' },
    };
    const given = [
      argument('credentialType', args.credentialType, key, 'String', built),
      argument('includeInactive', args.includeInactive, key, 'Boolean', built),
    ].filter(Boolean);
    const inner = [
      ...selection.leaves.map((l) => wrap(leaf(l), l.wrap, 'Credential', built)),
      ...selection.verification.map((v) => {
        const fields = v.leaves.map((l) => wrap(leaf(l), l.wrap, 'CredentialVerification', built)).join(' ');
        return wrap(`${v.aliased ? 'v: ' : ''}verification { ${fields} }`, v.wrap, 'Credential', built);
      }),
    ].join(' ');
    const field = `${key === 'credentials' ? '' : `${key}: `}credentials${given.length ? `(${given.join(', ')})` : ''} { ${inner} }`;
    selections.push(wrap(field, how, 'Account', built));
  }
  if (selections.length === 0) selections.push('id');
  const accounts = `${op.accountsAlias ? `${op.accountsAlias}: ` : ''}accounts { ${selections.join(' ')} }`;
  const root = wrap(accounts, op.rootWrap, 'Query', built);
  const variables = built.variables.length ? `(${built.variables.join(', ')})` : '';
  return {
    source: `query Read${variables} { ${root} } ${built.fragments.join(' ')}`,
    variables: built.values,
  };
}

// ---------------------------------------------------------------------------

function contextFor(userId: string, tx: ScopedDb): GraphQLContext {
  return {
    viewer: { id: userId, email: `${userId}@example.test`, name: userId },
    db: tx,
    keyring: undefined as never,
    verification: undefined as never,
    limits: { credentialsPerAccount: 100 },
    origin: { clientIp: null, userAgent: null },
  };
}

describe(`the accounts read's shortcut (${dbKind})`, () => {
  it('answers exactly what the general path answers, on generated data and selections', async () => {
    await fc.assert(
      fc.asyncProperty(dataArb, fc.array(operationArb, { minLength: 1, maxLength: 4 }), async (data, operations) => {
        const userId = await seed(data);
        await db.withUser(userId, async (tx) => {
          for (const operation of operations) {
            const { source, variables } = buildDocument(operation);
            const document = parse(source);
            expect(validate(schema, document), source).toEqual([]);
            const plan = planFastRead(schema, document);
            expect(plan, source).not.toBeNull();
            const general = await execute({
              schema,
              document,
              contextValue: contextFor(userId, tx),
              variableValues: variables,
            });
            expect(general.errors, source).toBeUndefined();
            const fast = await plan?.run(tx, userId, variables);
            expect(JSON.stringify(fast), source).toBe(JSON.stringify(general));
          }
        });
      }),
      { numRuns: 60 },
    );
  });

  it('takes only operations whose one root field is accounts, with fields and arguments it knows', () => {
    const takes = (source: string) => planFastRead(schema, parse(source)) !== null;
    expect(takes('{ accounts { id credentials { id verification { status } } } }')).toBe(true);
    expect(takes('query { ...Q } fragment Q on Query { accounts { id } }')).toBe(true);
    // Another root field, a mutation, a directive, a field it does not know, a fragment on another type.
    expect(takes('{ accounts { id } viewer { id } }')).toBe(false);
    expect(takes('{ a: accounts { id } b: accounts { id } }')).toBe(false);
    expect(takes('mutation { getOrCreateAccount { created } }')).toBe(false);
    expect(takes('{ accounts { id @include(if: true) } }')).toBe(false);
    expect(takes('query @skip(if: false) { accounts { id } }')).toBe(false);
    expect(takes('{ accounts { credentials { account { id } } } }')).toBe(false);
    expect(takes('{ accounts { credentials { events { edges { node { id } } } } } }')).toBe(false);
    expect(takes('{ account(id: "00000000-0000-4000-8000-000000000000") { id } }')).toBe(false);
    expect(takes('{ accounts { ... on Credential { id } } }')).toBe(false);
    // The operation to run is the one named.
    const doc = parse('query A { viewer { id } } query B { accounts { id } }');
    expect(planFastRead(schema, doc, 'A')).toBeNull();
    expect(planFastRead(schema, doc, 'B')).not.toBeNull();
  });

  it('leaves variables that do not coerce to the general path, which reports them', async () => {
    const plan = planFastRead(
      schema,
      parse(
        'query($t: String, $i: Boolean!) { accounts { credentials(credentialType: $t, includeInactive: $i) { id } } }',
      ),
    );
    const userId = await seed(null);
    await db.withUser(userId, async (tx) => {
      expect(await plan?.run(tx, userId, { t: 5, i: true })).toBeUndefined();
      expect(await plan?.run(tx, userId, { t: 'alpaca' })).toBeUndefined();
      expect(await plan?.run(tx, userId, { t: 'alpaca', i: false })).toEqual({ data: { accounts: [] } });
    });
  });
});
