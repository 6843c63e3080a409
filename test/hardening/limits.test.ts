// Abuse limits: each answers a clear error with a code, never a 500.
import { beforeAll, describe, expect, it } from 'vitest';
import { errorOf, gql, rawSignUp, type Session, signUp, uniqueEmail } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useServer } from '../support/server.ts';

const server = useServer();
let session: Session;

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
  it('allows a query 10 levels deep and refuses 11 with QUERY_LIMIT_EXCEEDED', async () => {
    const ok = await gql(server.url, nested(10), undefined, session);
    expect(ok.status).toBe(200);
    expect(ok.body.errors).toBeUndefined();
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
  const strict = useServer({ env: { GRAPHIQL: 'false', MAX_QUERY_COST: '20', MAX_QUERY_DEPTH: '3' } });

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

  it('applies configured depth and cost limits', async () => {
    const user = await signUp(strict.url);
    const deep = await gql(strict.url, nested(4), undefined, user);
    expect(deep.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_LIMIT_EXCEEDED', limit: 'depth' });
    const costly = await gql(
      strict.url,
      '{ accounts { id accountName isActive createdAt updatedAt credentials { id nickname apiKeyHint createdAt } } }',
      undefined,
      user,
    );
    expect(costly.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_LIMIT_EXCEEDED', limit: 'cost' });
    expect(costly.status).toBeLessThan(500);
  });
});
