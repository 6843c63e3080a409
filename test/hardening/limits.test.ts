// Abuse limits: each answers a clear error with a code, never a 500.
import { beforeAll, describe, expect, it } from 'vitest';
import { errorOf, gql, rawSignUp, type Session, signUp, uniqueEmail } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';
import { countStatements } from '../support/statement-counter.ts';

const statements: string[] = [];
const server = useInProcessServer({ instrument: countStatements((sql) => statements.push(sql)) });
let session: Session;

const EVENT_PAGE =
  'edges { cursor node { id credentialId action changedFields verificationStatus occurredAt clientIp userAgent ' +
  'engineClientId engineRequest guardrailRule engineOrder { symbol side type qty notional clientOrderId ' +
  'estimatedNotional referencePrice } engineResponse { status brokerRequestId } } } ' +
  'pageInfo { hasNextPage hasPreviousPage startCursor endCursor }';
const ACCOUNT_FIELDS = 'id userId accountName isActive createdAt updatedAt';
const CREDENTIAL_FIELDS = 'id accountId credentialType nickname apiKeyHint isActive createdAt updatedAt';
const VERIFICATION = 'verification { status checkedAt environment brokerAccountNumber brokerAccountStatus message }';
const GRANT_FIELDS =
  'id credentialId scopes createdAt expiresAt revokedAt isActive client { id name } guardrails { tradingState ' +
  'symbols assetClasses orderTypes allowShortSelling allowExtendedHours allowAccountWideActions maxOrderNotional ' +
  'maxOrderQuantity maxDailyNotional maxDailyOrders priceCollarPercent } usageToday { tradingDay orders notional }';
/** Every field of the account, every credential, a full page of events each. */
const EVENTS = `accounts { ${ACCOUNT_FIELDS} credentials { ${CREDENTIAL_FIELDS} ${VERIFICATION} account { ${ACCOUNT_FIELDS} } events(first: 100) { ${EVENT_PAGE} } } }`;
/** The largest query the API is for: the above, and every engine grant of every credential. */
const LARGEST = EVENTS.replace('events(first: 100)', `engineGrants { ${GRANT_FIELDS} } events(first: 100)`);

/** `{ accounts { credentials { account { credentials ... } } } }` nested to `depth` levels. */
function nested(depth: number): string {
  let inner = 'id';
  for (let level = depth - 1; level >= 1; level -= 1) {
    inner = level % 2 === 1 ? `accounts_${level} { ${inner} }` : `credentials { ${inner} }`;
  }
  // Rewrite the placeholder names into the real alternation of fields.
  return `{ ${inner.replace(/accounts_1/, 'accounts').replace(/accounts_\d+/g, 'account')} }`;
}

const post = (body: string, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body,
  });

beforeAll(async () => {
  session = await signUp(server.url);
});

describe(`document limits (${dbKind})`, () => {
  it('lets a query 10 levels deep past the depth limit and refuses 11 with QUERY_LIMIT_EXCEEDED', async () => {
    // Ten levels of this back-link are four nested credential lists: within
    // depth, far over the complexity limit (the next describe block).
    const ten = await gql(server.url, nested(10), undefined, session);
    expect(ten.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_LIMIT_EXCEEDED', limit: 'complexity' });
    const deep = await gql(server.url, nested(11), undefined, session);
    expect(deep.status).toBe(400);
    expect(deep.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_LIMIT_EXCEEDED', limit: 'depth' });
  });

  it('allows 15 aliases and refuses 16', async () => {
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: viewer { id }`).join(' ')} }`;
    expect((await gql(server.url, aliases(15), undefined, session)).body.errors).toBeUndefined();
    const res = await gql(server.url, aliases(16), undefined, session);
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_LIMIT_EXCEEDED', limit: 'aliases' });
  });

  it('refuses a document of more than 2000 tokens', async () => {
    const res = await gql(server.url, `{ viewer { ${'id '.repeat(2100)} } }`, undefined, session);
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_LIMIT_EXCEEDED', limit: 'tokens' });
  });

  it('refuses a request body over 100 KB with 413, and an auth body over 16 KB', async () => {
    const big = JSON.stringify({ query: '{ viewer { id } }', variables: { pad: 'x'.repeat(110_000) } });
    const res = await post(big);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe(
      'REQUEST_ENTITY_TOO_LARGE',
    );
    const auth = await rawSignUp(server.url, { email: uniqueEmail(), password: 'x'.repeat(20_000), name: 'big' });
    expect(auth.status).toBe(413);
  });

  it('counts a body sent without Content-Length (chunked) as it streams: small ones pass, big ones get 413', async () => {
    const chunked = (body: string) => {
      const bytes = new TextEncoder().encode(body);
      return fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          authorization: `Bearer ${session.token}`,
        },
        body: new ReadableStream({
          start(controller) {
            for (let at = 0; at < bytes.length; at += 16_384) controller.enqueue(bytes.subarray(at, at + 16_384));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    };
    const small = await chunked(JSON.stringify({ query: '{ viewer { id } }' }));
    expect(small.status).toBe(200);
    expect(((await small.json()) as { data: { viewer: { id: string } } }).data.viewer.id).toBe(session.user.id);
    const big = await chunked(JSON.stringify({ query: '{ viewer { id } }', variables: { pad: 'x'.repeat(110_000) } }));
    expect(big.status).toBe(413);
    expect(await big.text()).toContain('REQUEST_ENTITY_TOO_LARGE');
  });
});

describe(`query complexity counts pages, and refuses before anything runs (${dbKind})`, () => {
  /** Runs `query` and returns its response with the SQL statements the server sent meanwhile. */
  async function observed(query: string, variables?: Record<string, unknown>) {
    statements.length = 0;
    const res = await gql(server.url, query, variables, user);
    return { res, sql: [...statements] };
  }

  let user: Session;

  beforeAll(async () => {
    user = await signUp(server.url);
    // Warm the session cache: later requests send no session lookup of their own.
    await gql(server.url, 'mutation { getOrCreateAccount { created } }', undefined, user);
  });

  it('serves the largest legitimate queries at first: 100, as literal or variable', async () => {
    for (const [query, variables] of [
      [`{ ${LARGEST} }`, undefined],
      [
        `query($id: UUID!) { credential(id: $id) { ${CREDENTIAL_FIELDS} events(first: 100) { ${EVENT_PAGE} } } }`,
        { id: '00000000-0000-4000-8000-000000000000' },
      ],
      [`query($first: Int) { credentialEvents(first: $first) { ${EVENT_PAGE} } }`, { first: 100 }],
    ] as const) {
      const { res } = await observed(query, variables);
      expect(res.body.errors, query).toBeUndefined();
      expect(res.status).toBe(200);
    }
  });

  it('refuses pages multiplied by aliases or back-links with HTTP 400 and QUERY_LIMIT_EXCEEDED, sending no SQL', async () => {
    // Seven event pages per credential at first: 100 are over the limit, at first: 10 well under it.
    const sevenTimes = (events: string) => `{ ${Array.from({ length: 7 }, (_, i) => `a${i}: ${events}`).join(' ')} }`;
    const refused = [
      `{ a: ${LARGEST} b: ${LARGEST} }`,
      sevenTimes(EVENTS),
      '{ accounts { credentials { account { credentials { account { credentials { id } } } } } } }',
      // The page size counts when it comes as a variable too.
      `query($first: Int) ${sevenTimes(EVENTS.replace('first: 100', 'first: $first'))}`,
    ];
    for (const query of refused) {
      const { res, sql } = await observed(query, { first: 100 });
      expect(res.status, query).toBe(400);
      expect(res.body.data ?? null).toBeNull();
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_LIMIT_EXCEEDED', limit: 'complexity' });
      expect(res.body.errors?.[0]?.message).toMatch(/^Query too complex: [\d,]+ against a limit of 300,000\./);
      expect(res.body.errors?.[0]?.message).not.toMatch(/syntax/i);
      expect(sql, query).toEqual([]);
    }
    // The same document with a small page passes: the estimate follows the variable.
    const small = await observed(refused[3] as string, { first: 10 });
    expect(small.res.body.errors).toBeUndefined();
    expect(small.sql.length).toBeGreaterThan(0);
  });
});

describe(`CSRF protection for cookie sessions (${dbKind})`, () => {
  it('refuses simple cookie requests (GET or form POST without the header) with CSRF_PREVENTED', async () => {
    const get = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ accounts { id } }')}`, {
      headers: { cookie: session.cookie, accept: 'application/json' },
    });
    expect(get.status).toBe(403);
    expect(await get.text()).toContain('CSRF_PREVENTED');
    const form = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: `query=${encodeURIComponent('mutation { getOrCreateAccount { created } }')}`,
    });
    expect(form.status).toBe(403);
    expect((await gql(server.url, '{ accounts { id } }', undefined, session)).body.data?.accounts).toEqual([]);
  });

  it('lets cookie JSON POSTs, cookie GETs with the header, and bearer GETs through', async () => {
    expect((await gql(server.url, '{ accounts { id } }', undefined, { cookie: session.cookie })).status).toBe(200);
    const query = `${server.url}/graphql?query=${encodeURIComponent('{ accounts { id } }')}`;
    const withHeader = await fetch(query, { headers: { cookie: session.cookie, 'x-graphql-yoga-csrf': '1' } });
    expect(withHeader.status).toBe(200);
    const bearer = await fetch(query, { headers: { authorization: `Bearer ${session.token}` } });
    expect(bearer.status).toBe(200);
  });
});

describe(`configurable limits, GraphiQL and introspection (${dbKind})`, () => {
  const strict = useInProcessServer({
    env: { GRAPHIQL: 'false', MAX_QUERY_COMPLEXITY: '500', MAX_CREDENTIALS_PER_ACCOUNT: '10', MAX_QUERY_DEPTH: '5' },
  });

  it('refuses introspection when GraphiQL is off, and serves no GraphiQL page', async () => {
    const res = await gql(strict.url, '{ __schema { queryType { name } } }');
    expect(res.body.data ?? null).toBeNull();
    expect(errorOf(res).code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(errorOf(res).message).toMatch(/introspection has been disabled/);
    const page = await fetch(`${strict.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toContain('YogaGraphiQL');
  });

  it('hides field suggestions when introspection is off', async () => {
    const res = await gql(strict.url, '{ accountz { id } }');
    expect(errorOf(res).message).not.toMatch(/Did you mean/);
  });

  it('applies configured depth and complexity limits, the latter with the configured credential cap', async () => {
    const user = await signUp(strict.url);
    // Five levels, two credential lists of at most 10: 1 + 1 + 10 × (1 + 1 + 10) = 122.
    const five = await gql(strict.url, nested(5), undefined, user);
    expect(five.body.errors).toBeUndefined();
    const deep = await gql(strict.url, nested(6), undefined, user);
    expect(deep.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_LIMIT_EXCEEDED', limit: 'depth' });
    // 1 + 1 × (1 + 10 credentials × (1 + 50 events × 1 cursor)) = 512
    const costly = await gql(
      strict.url,
      '{ accounts { credentials { events(first: 50) { edges { cursor } } } } }',
      undefined,
      user,
    );
    expect(costly.status).toBe(400);
    expect(costly.body.errors?.[0]?.extensions).toMatchObject({
      code: 'QUERY_LIMIT_EXCEEDED',
      limit: 'complexity',
      complexity: 512,
      maxComplexity: 500,
    });
  });
});
