// Property-based: the GraphQL request envelope. Any JSON value in query,
// variables, operationName, extensions or documentId, any extra key, a
// top-level array or scalar, batches; as a JSON POST, a GET query string or
// a form POST; anonymous, by bearer token or by cookie. The answer is never
// a 5xx, always JSON, every error carries a code (and none is
// INTERNAL_SERVER_ERROR), and the server logs nothing at error level. A
// parameter of the wrong JSON type is refused with a 400 that names it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { gql, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { type InProcessServer, useInProcessServer } from '../support/in-process.ts';

const RUNS = Math.min(200, Number(process.env.FUZZ_RUNS ?? 120));

const manifest = JSON.parse(
  readFileSync(path.resolve(import.meta.dirname, '../../src/sdk/generated/persisted-documents.json'), 'utf8'),
) as Record<string, string>;
const TRUSTED_HASH = Object.keys(manifest)[0] as string;

/** Documents that parse and run, so the plugins after parsing (secrets, complexity, RLS) see arbitrary variables. */
const DOCUMENTS = [
  '{ __typename }',
  'query Viewer { viewer { id email } }',
  'query Credential($id: UUID!) { credential(id: $id) { id nickname apiKeyHint } }',
  'query Events($first: Int, $credentialId: UUID, $after: String) { credentialEvents(first: $first, credentialId: $credentialId, after: $after) { pageInfo { hasNextPage } } }',
  'mutation Store($input: StoreCredentialInput!) { storeCredential(input: $input) { id apiKeyHint } }',
  'mutation Create($input: CreateAccountInput!) { createAccount(input: $input) { id } }',
];
const OPERATION_NAMES = ['Viewer', 'Credential', 'Events', 'Store', 'Create', ''];

const json = fc.jsonValue({ maxDepth: 3 });
const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }));

let accountId = '00000000-0000-4000-8000-000000000000';
/** Mostly a value that fits, else any JSON at all (wrong types included). */
const mostly = <T>(fitting: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: fitting, weight: 6 }, { arbitrary: json as fc.Arbitrary<unknown>, weight: 1 });

const variables = mostly(
  fc.oneof(
    fc.dictionary(fc.constantFrom('id', 'first', 'after', 'credentialId', 'input'), json, { maxKeys: 3 }),
    fc.record({
      input: fc.record(
        {
          accountId: fc.constant(null).map(() => accountId),
          credentialType: fc.oneof(fc.constant('alpaca'), json),
          apiKey: fc.oneof(text, json),
          secretKey: fc.oneof(text, json),
          accountName: fc.oneof(text, json),
        },
        { requiredKeys: [] },
      ),
    }),
  ),
);
const extensions = mostly(
  fc.record(
    {
      persistedQuery: fc.oneof(
        json,
        fc.record(
          { version: fc.oneof(fc.constant(1), json), sha256Hash: fc.oneof(fc.constant(TRUSTED_HASH), text, json) },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: [] },
  ),
);

const absent = fc.constant(undefined);

/** The envelope's own parameters, each absent, arbitrary JSON, or a value that fits; rarely extra keys. */
const envelope = fc
  .tuple(
    fc.record({
      query: fc.oneof({ arbitrary: fc.constantFrom(...DOCUMENTS), weight: 8 }, absent, text, json),
      variables: fc.oneof(absent, variables),
      // Mostly absent: a name picks one operation, and most names do not match the document.
      operationName: fc.oneof({ arbitrary: absent, weight: 3 }, mostly(fc.constantFrom(...OPERATION_NAMES))),
      extensions: fc.oneof(absent, extensions),
      documentId: fc.oneof(
        { arbitrary: absent, weight: 2 },
        mostly(fc.constantFrom(TRUSTED_HASH, `sha256:${TRUSTED_HASH}`, 'sha256:0', '')),
      ),
    }),
    fc.oneof(
      { arbitrary: fc.constant({}), weight: 6 },
      { arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), json, { minKeys: 1, maxKeys: 2 }), weight: 1 },
    ),
  )
  .map(([params, extra]) => ({
    ...extra,
    ...Object.fromEntries(Object.entries(params).filter(([, value]) => value !== undefined)),
  }));

/** A JSON POST body: mostly an envelope, else a batch or anything at all. */
const postBody = fc.oneof(
  { arbitrary: envelope, weight: 8 },
  { arbitrary: fc.array(envelope, { maxLength: 3 }), weight: 1 },
  { arbitrary: json, weight: 1 },
);

type Caller = 'anonymous' | 'bearer' | 'cookie';
const caller = fc.constantFrom<Caller>('anonymous', 'bearer', 'cookie');

let session: Session;
function authHeaders(who: Caller): Record<string, string> {
  if (who === 'bearer') return { authorization: `Bearer ${session.token}` };
  if (who === 'cookie') return { cookie: session.cookie };
  return {};
}

/** A query-string encoding: strings as they are, other values as JSON, or instead any text (JSON or not). */
const searchParams = envelope.chain((params) =>
  fc
    .tuple(
      ...Object.entries(params).map(([key, value]) =>
        fc
          .oneof(fc.constant(typeof value === 'string' ? value : JSON.stringify(value)), text)
          .map((encoded) => [key, encoded] as const),
      ),
    )
    .map((pairs) => new URLSearchParams(pairs.map(([key, encoded]) => [key, encoded]))),
);

const ERROR_LEVEL = /"level":(50|60)\b/;

/** The answer is a client's to act on: below 500, JSON, a code on every error, no error logged. */
async function expectClientAnswer(server: InProcessServer, what: string, init: RequestInit & { url: string }) {
  const logged = server.logs.length;
  const res = await fetch(init.url, init);
  const body = await res.text();
  const context = `${what} → ${res.status} ${body.slice(0, 500)}`;
  expect(res.status, context).toBeLessThan(500);
  expect(res.headers.get('content-type'), context).toMatch(/json/);
  const parsed = JSON.parse(body) as { data?: unknown; errors?: { extensions?: { code?: unknown } }[] };
  if (res.status >= 400 || parsed.errors) {
    expect(parsed.errors?.length, context).toBeGreaterThan(0);
    for (const error of parsed.errors ?? []) {
      expect(typeof error.extensions?.code, context).toBe('string');
      expect(error.extensions?.code, context).not.toBe('INTERNAL_SERVER_ERROR');
    }
  } else {
    expect(parsed.data, context).toBeDefined();
  }
  expect(
    server.logs.slice(logged).filter((line) => ERROR_LEVEL.test(line)),
    context,
  ).toEqual([]);
}

function envelopeProperties(server: InProcessServer, runs: number) {
  it(`JSON POST: any body gets a coded 4xx or data, and logs no error (${runs} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(postBody, caller, async (body, who) => {
        await expectClientAnswer(server, `POST ${JSON.stringify(body)} as ${who}`, {
          url: `${server.url}/graphql`,
          method: 'POST',
          headers: { 'content-type': 'application/json', ...authHeaders(who) },
          body: JSON.stringify(body),
        });
      }),
      { numRuns: runs },
    );
    expect(server.logs.filter((line) => ERROR_LEVEL.test(line))).toEqual([]);
  });

  it(`GET and form POST: any query string gets a coded 4xx or data, and logs no error (${runs} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(searchParams, caller, fc.boolean(), async (search, who, asForm) => {
        const what = `${asForm ? 'form POST' : 'GET'} ${search} as ${who}`;
        await expectClientAnswer(
          server,
          what,
          asForm
            ? {
                url: `${server.url}/graphql`,
                method: 'POST',
                headers: { 'content-type': 'application/x-www-form-urlencoded', ...authHeaders(who) },
                body: search.toString(),
              }
            : { url: `${server.url}/graphql?${search}`, headers: authHeaders(who) },
        );
      }),
      { numRuns: runs },
    );
    expect(server.logs.filter((line) => ERROR_LEVEL.test(line))).toEqual([]);
  });
}

/** What a JSON value is, in the words of the refusal. */
const typeName = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value);

describe(`GraphQL request envelope (${dbKind})`, () => {
  const server = useInProcessServer();
  beforeAll(async () => {
    session = await signUp(server.url);
    const res = await gql(server.url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
    accountId = res.body.data?.getOrCreateAccount.account.id;
  });

  for (const value of [42, 1.5, true, {}, { kind: 'Document' }, [], ['{ __typename }']]) {
    it(`refuses "query": ${JSON.stringify(value)} with a 400 naming query`, async () => {
      const res = await gql(server.url, value as unknown as string);
      expect(res.status, res.text).toBe(400);
      expect(res.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
      expect(res.body.errors?.[0]?.message).toBe(
        `Expected "query" param to be a string, but given ${typeName(value)}.`,
      );
    });
  }

  it('refuses variables, operationName, extensions and documentId of the wrong JSON type, naming each', async () => {
    const wrong = {
      variables: fc.oneof(fc.string(), fc.double(), fc.boolean(), fc.array(json, { maxLength: 2 })),
      extensions: fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.array(json, { maxLength: 2 })),
      operationName: fc.oneof(
        fc.integer(),
        fc.boolean(),
        fc.array(json, { maxLength: 2 }),
        fc.dictionary(fc.string(), json),
      ),
      documentId: fc.oneof(
        fc.integer(),
        fc.boolean(),
        fc.array(json, { maxLength: 2 }),
        fc.dictionary(fc.string(), json),
      ),
    };
    const named = fc.oneof(...Object.entries(wrong).map(([name, value]) => value.map((v) => [name, v] as const)));
    await fc.assert(
      fc.asyncProperty(named, caller, async ([name, value], who) => {
        const res = await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...authHeaders(who) },
          body: JSON.stringify({ query: 'query Viewer { viewer { id } }', [name]: value }),
        });
        const body = (await res.json()) as { errors?: { message: string; extensions?: { code?: string } }[] };
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
        expect(body.errors?.[0]?.message).toContain(`"${name}" param`);
        expect(body.errors?.[0]?.message).toContain(`given ${typeName(value)}`);
      }),
      { numRuns: Math.min(RUNS, 60) },
    );
  });

  for (const name of ['variables', 'extensions']) {
    it(`refuses a GET whose ${name} is not JSON with a 400 naming it`, async () => {
      const res = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ __typename }')}&${name}=%7B`);
      const body = (await res.json()) as { errors?: { message: string; extensions?: { code?: string } }[] };
      expect(res.status).toBe(400);
      expect(body.errors?.[0]).toMatchObject({
        message: `The "${name}" param is not valid JSON.`,
        extensions: { code: 'BAD_REQUEST' },
      });
    });
  }

  envelopeProperties(server, RUNS);
});

describe(`GraphQL request envelope, TRUSTED_DOCUMENTS=required (${dbKind})`, () => {
  const server = useInProcessServer({ env: { TRUSTED_DOCUMENTS: 'required' } });
  beforeAll(async () => {
    session = await signUp(server.url);
  });
  envelopeProperties(server, Math.ceil(RUNS / 2));
});
