// With introspection off, no error names a schema member the client did not
// write: graphql-js's "Did you mean …?" is hidden in validation errors and in
// the errors of variables whose values do not fit their types.
// In development (introspection on) the suggestions stay: they help.
import { describe, expect, it } from 'vitest';
import { gql, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { type InProcessServer, useInProcessServer } from '../support/in-process.ts';

const STORE = 'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }';

/** Requests whose errors graphql-js would complete with a suggestion. */
async function suggestionBait(server: InProcessServer): Promise<string[]> {
  const session = await signUp(server.url);
  const responses = await Promise.all([
    // Validation: a misspelt field, argument and input field (literal).
    gql(server.url, '{ accountz { id } }', undefined, session),
    gql(server.url, '{ accounts { credentials(includeInactiv: true) { id } } }', undefined, session),
    gql(server.url, 'mutation { createAccount(input: { accountNam: "x" }) { id } }', undefined, session),
    // Variable coercion: a misspelt input field in a variable.
    gql(
      server.url,
      STORE,
      { input: { accountId: crypto.randomUUID(), credentialType: 'alpaca', apiKy: 'k', secretKey: 's' } },
      session,
    ),
    gql(
      server.url,
      'mutation($i: UpdateCredentialInput!) { updateCredential(id: "00000000-0000-4000-8000-000000000000", input: $i) { id } }',
      { i: { nicknam: 'x' } },
      session,
    ),
  ]);
  return responses.flatMap((res) => (res.body.errors ?? []).map((e) => e.message));
}

describe(`field suggestions with introspection off (${dbKind})`, () => {
  const server = useInProcessServer({ env: { GRAPHIQL: 'false' } });

  it('never says "Did you mean", in validation or in variable errors', async () => {
    const messages = await suggestionBait(server);
    expect(messages.length).toBeGreaterThanOrEqual(5);
    expect(messages.filter((m) => /Did you mean/.test(m))).toEqual([]);
  });
});

describe(`field suggestions in development (${dbKind})`, () => {
  const server = useInProcessServer();

  it('keeps them where introspection is on', async () => {
    const messages = await suggestionBait(server);
    expect(messages.filter((m) => /Did you mean/.test(m)).length).toBeGreaterThanOrEqual(5);
  });
});
