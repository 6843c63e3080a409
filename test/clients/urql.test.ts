// urql (@urql/core) with the SDK's TypedDocumentNode documents, against the
// composed app over HTTP (in-process): the user flow, its document cache, GET queries, errors.
import { Client, cacheExchange, fetchExchange } from '@urql/core';
import {
  AccountsDocument,
  CreateAccountDocument,
  DeleteCredentialDocument,
  GetOrCreateAccountDocument,
  StoreCredentialDocument,
  UpdateCredentialDocument,
  ViewerDocument,
} from 'brokerage-credentials-api/sdk';
import { describe, expect, it } from 'vitest';
import { signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';
import { recordingFetch } from '../support/recording-fetch.ts';

const server = useInProcessServer();

function urqlClient(
  token?: string,
  extra: { cookie?: string; preferGetMethod?: boolean; headers?: Record<string, string> } = {},
) {
  const recorder = recordingFetch();
  const client = new Client({
    url: `${server.url}/graphql`,
    exchanges: [cacheExchange, fetchExchange],
    // Queries go as GET (urql's default, spelled out): the API takes them, and a
    // bearer request needs no CSRF header (only cookie requests do).
    preferGetMethod: extra.preferGetMethod ?? 'within-url-limit',
    fetchOptions: {
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(extra.cookie ? { cookie: extra.cookie } : {}),
        ...extra.headers,
      },
    },
    fetch: recorder.fetch,
  });
  return { client, requests: recorder.requests };
}

describe(`urql (${dbKind})`, () => {
  it('runs the user flow; queries travel as GET and mutations invalidate cached results by type', async () => {
    const session = await signUp(server.url);
    const { client, requests } = urqlClient(session.token);

    const viewer = await client.query(ViewerDocument, {}).toPromise();
    expect(viewer.error).toBeUndefined();
    expect(viewer.data?.viewer?.email).toBe(session.email);

    const created = await client.mutation(GetOrCreateAccountDocument, {}).toPromise();
    const account = created.data!.getOrCreateAccount.account;
    expect(created.data?.getOrCreateAccount).toMatchObject({
      created: true,
      account: { accountName: 'Default Alpaca Account' },
    });

    const store = async (nickname?: string) => {
      const input = {
        accountId: account.id,
        credentialType: 'alpaca',
        apiKey: `PK${crypto.randomUUID()}`,
        secretKey: 's3cret',
        nickname,
      };
      const result = await client.mutation(StoreCredentialDocument, { input }).toPromise();
      expect(result.error).toBeUndefined();
      return result.data!.storeCredential;
    };
    const paper = await store('Paper account 1');
    const plain = await store();
    expect([paper.nickname, plain.nickname]).toEqual(['Paper account 1', 'alpaca']);

    const list = async () => {
      const result = await client.query(AccountsDocument, { credentialType: 'alpaca' }).toPromise();
      expect(result.error).toBeUndefined();
      return result.data!.accounts[0]!.credentials.map((c) => c.nickname);
    };
    expect(await list()).toEqual(['Paper account 1', 'alpaca']);
    const listRequests = () => requests.filter((r) => r.operationName === 'Accounts');
    expect(await list()).toEqual(['Paper account 1', 'alpaca']);
    expect(listRequests()).toHaveLength(1); // the second answer came from the cache

    const renamed = await client
      .mutation(UpdateCredentialDocument, { id: plain.id, input: { nickname: 'Live' } })
      .toPromise();
    expect(renamed.data?.updateCredential.nickname).toBe('Live');
    // The result's Credential typename invalidated the cached list: it is fetched again.
    expect(await list()).toEqual(['Paper account 1', 'Live']);
    expect(listRequests()).toHaveLength(2);

    // deleteCredential answers a bare UUID, so the mutation names the type it changes.
    const deleted = await client
      .mutation(DeleteCredentialDocument, { id: paper.id }, { additionalTypenames: ['Credential'] })
      .toPromise();
    expect(deleted.data?.deleteCredential).toBe(paper.id);
    expect(await list()).toEqual(['Live']);

    const methods = new Set(requests.map((r) => `${r.operationName}:${r.method}`));
    expect(methods).toEqual(
      new Set([
        'Viewer:GET',
        'Accounts:GET',
        'GetOrCreateAccount:POST',
        'StoreCredential:POST',
        'UpdateCredential:POST',
        'DeleteCredential:POST',
      ]),
    );
  });

  it('reports GraphQL errors in result.error with extensions.code', async () => {
    const { client } = urqlClient((await signUp(server.url)).token);
    await client.mutation(CreateAccountDocument, { input: { accountName: 'One' } }).toPromise();
    const conflict = await client.mutation(CreateAccountDocument, { input: { accountName: 'Two' } }).toPromise();
    expect(conflict.error?.graphQLErrors[0]?.extensions.code).toBe('CONFLICT');

    const denied = await urqlClient().client.query(AccountsDocument, {}).toPromise();
    expect(denied.error?.graphQLErrors[0]?.extensions.code).toBe('UNAUTHENTICATED');
    expect(denied.error?.response?.status).toBe(401);
  });

  it('with the session cookie (as a browser), a GET query needs the CSRF header or POST instead', async () => {
    const { cookie } = await signUp(server.url);
    const simple = await urqlClient(undefined, { cookie }).client.query(ViewerDocument, {}).toPromise();
    expect(simple.error?.response?.status).toBe(403);
    for (const extra of [{ headers: { 'x-graphql-yoga-csrf': '1' } }, { preferGetMethod: false }]) {
      const result = await urqlClient(undefined, { cookie, ...extra })
        .client.query(ViewerDocument, {})
        .toPromise();
      expect(result.error).toBeUndefined();
      expect(result.data?.viewer).not.toBeNull();
    }
  });
});
