// Requests that are not proper GraphQL get clear 4xx answers, never a 500.
import { describe, expect, it } from 'vitest';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';

const server = useInProcessServer();

async function send(init: RequestInit & { path?: string }) {
  const res = await fetch(`${server.url}${init.path ?? '/graphql'}`, init);
  const text = await res.text();
  return { status: res.status, text, code: /"code":"([A-Z_]+)"/.exec(text)?.[1] };
}

describe(`malformed requests (${dbKind})`, () => {
  const json = { 'content-type': 'application/json' };
  const cases: [string, RequestInit & { path?: string }, number, string | undefined][] = [
    ['malformed JSON', { method: 'POST', headers: json, body: '{"query": "{ viewer { id } }"' }, 400, 'BAD_REQUEST'],
    ['an empty body', { method: 'POST', headers: json, body: '' }, 400, 'BAD_REQUEST'],
    ['a JSON body without a query', { method: 'POST', headers: json, body: '{"variables":{}}' }, 400, 'BAD_REQUEST'],
    [
      'a wrong content type',
      { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'multipart',
      { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--' },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'a batched request',
      {
        method: 'POST',
        headers: json,
        body: JSON.stringify([{ query: '{ viewer { id } }' }, { query: '{ viewer { id } }' }]),
      },
      400,
      'BAD_REQUEST',
    ],
    [
      'an unknown operation name',
      {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ query: 'query A { viewer { id } }', operationName: 'B' }),
      },
      400,
      'OPERATION_RESOLUTION_FAILURE',
    ],
    [
      'a PUT',
      { method: 'PUT', headers: json, body: JSON.stringify({ query: '{ viewer { id } }' }) },
      405,
      'BAD_REQUEST',
    ],
    [
      'a mutation over GET',
      { method: 'GET', path: `/graphql?query=${encodeURIComponent('mutation { getOrCreateAccount { created } }')}` },
      405,
      'BAD_REQUEST',
    ],
    [
      'auth with malformed JSON',
      { method: 'POST', path: '/api/auth/sign-in/email', headers: json, body: '{"email":' },
      400,
      undefined,
    ],
  ];

  for (const [what, init, status, code] of cases) {
    it(`answers ${what} with ${status}${code ? ` and ${code}` : ''}`, async () => {
      const res = await send(init);
      expect(res.status, res.text).toBe(status);
      if (code) expect(res.code, res.text).toBe(code);
      expect(res.text).not.toMatch(/at .*\.(ts|js):\d+|stack/i);
    });
  }

  it('answers a syntax error with GRAPHQL_PARSE_FAILED', async () => {
    const res = await send({
      method: 'POST',
      headers: { ...json, accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: '{ viewer { id ' }),
    });
    expect(res.status).toBe(400);
    expect(res.code).toBe('GRAPHQL_PARSE_FAILED');
  });
});
