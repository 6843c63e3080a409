// Apollo Client (core, no React) with the SDK's TypedDocumentNode documents,
// against the composed app over HTTP (in-process): the user flow, the normalised cache, errors.
import { ApolloClient, CombinedGraphQLErrors, HttpLink, InMemoryCache } from '@apollo/client';
import {
  AccountsDocument,
  CreateAccountDocument,
  DeleteCredentialDocument,
  GetOrCreateAccountDocument,
  StoreCredentialDocument,
  UpdateAccountDocument,
  UpdateCredentialDocument,
  ViewerDocument,
} from 'brokerage-credentials-api/sdk';
import { describe, expect, it } from 'vitest';
import { signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';
import { recordingFetch } from '../support/recording-fetch.ts';

const server = useInProcessServer();

function apolloClient(token?: string, cookie?: string) {
  const recorder = recordingFetch();
  // A re-read list replaces the cached one (the default merge warns that items may be dropped: they are meant to be).
  const cache = new InMemoryCache({ typePolicies: { Account: { fields: { credentials: { merge: false } } } } });
  const client = new ApolloClient({
    link: new HttpLink({
      uri: `${server.url}/graphql`,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(cookie ? { cookie } : {}) },
      fetch: recorder.fetch,
    }),
    cache,
  });
  return { client, cache, requests: recorder.requests };
}

describe(`Apollo Client (${dbKind})`, () => {
  it('runs the user flow and keeps Account and Credential normalised in its cache', async () => {
    const session = await signUp(server.url, { name: 'Grace' });
    const { client, cache, requests } = apolloClient(session.token);

    const { data: viewer } = await client.query({ query: ViewerDocument });
    expect(viewer?.viewer).toMatchObject({ email: session.email, name: 'Grace' });

    const { data: created } = await client.mutate({
      mutation: GetOrCreateAccountDocument,
      variables: { input: { accountName: 'Trading' } },
    });
    const account = created!.getOrCreateAccount.account;
    expect(created?.getOrCreateAccount).toMatchObject({ created: true, account: { accountName: 'Trading' } });

    const store = (nickname?: string) =>
      client.mutate({
        mutation: StoreCredentialDocument,
        variables: {
          input: {
            accountId: account.id,
            credentialType: 'alpaca',
            apiKey: `PK${crypto.randomUUID()}`,
            secretKey: 's3cret',
            nickname,
          },
        },
      });
    const paper = (await store('Paper account 1')).data!.storeCredential;
    const plain = (await store()).data!.storeCredential;
    expect([paper.nickname, plain.nickname]).toEqual(['Paper account 1', 'alpaca']);

    const variables = { credentialType: 'alpaca' };
    const { data: listed } = await client.query({ query: AccountsDocument, variables });
    expect(listed?.accounts.map((a) => a.credentials.map((c) => c.id))).toEqual([[paper.id, plain.id]]);

    const cached = cache.extract();
    expect(cached[`Account:${account.id}`]).toMatchObject({ __typename: 'Account', accountName: 'Trading' });
    expect(cached[`Credential:${paper.id}`]).toMatchObject({ __typename: 'Credential', nickname: 'Paper account 1' });
    expect(cached[`Credential:${plain.id}`]).toMatchObject({ __typename: 'Credential', nickname: 'alpaca' });
    expect(cached.ROOT_QUERY?.accounts).toEqual([{ __ref: `Account:${account.id}` }]);

    // A watching UI sees mutation results land in the list it shows, with no refetch.
    const watched: string[][] = [];
    const subscription = client.watchQuery({ query: AccountsDocument, variables }).subscribe((result) => {
      if (result.dataState === 'complete') watched.push(result.data.accounts[0]!.credentials.map((c) => c.nickname));
    });
    const before = requests.length;
    await client.mutate({
      mutation: UpdateCredentialDocument,
      variables: { id: plain.id, input: { nickname: 'Live' } },
    });
    await client.mutate({
      mutation: UpdateAccountDocument,
      variables: { id: account.id, input: { accountName: 'Trading desk' } },
    });
    expect(requests.slice(before).map((r) => r.operationName)).toEqual(['UpdateCredential', 'UpdateAccount']);
    const fromCache = client.readQuery({ query: AccountsDocument, variables });
    expect(fromCache?.accounts[0]).toMatchObject({ accountName: 'Trading desk' });
    expect(fromCache?.accounts[0]?.credentials.map((c) => c.nickname)).toEqual(['Paper account 1', 'Live']);
    expect(watched[0]).toEqual(['Paper account 1', 'alpaca']);
    await expect.poll(() => watched.at(-1), { timeout: 10_000 }).toEqual(['Paper account 1', 'Live']);
    subscription.unsubscribe();

    // A deleted object leaves the cache with evict; the cached list then drops it.
    await client.mutate({
      mutation: DeleteCredentialDocument,
      variables: { id: paper.id },
      update(cache, { data }) {
        cache.evict({ id: cache.identify({ __typename: 'Credential', id: data?.deleteCredential }) });
        cache.gc();
      },
    });
    expect(cache.extract()[`Credential:${paper.id}`]).toBeUndefined();
    expect(client.readQuery({ query: AccountsDocument, variables })?.accounts[0]?.credentials.map((c) => c.id)).toEqual(
      [plain.id],
    );
    const { data: fresh } = await client.query({ query: AccountsDocument, variables, fetchPolicy: 'network-only' });
    expect(fresh?.accounts[0]?.credentials.map((c) => [c.id, c.nickname])).toEqual([[plain.id, 'Live']]);
  });

  it('rejects with CombinedGraphQLErrors carrying extensions.code', async () => {
    const { client } = apolloClient((await signUp(server.url)).token);
    await client.mutate({ mutation: CreateAccountDocument, variables: { input: { accountName: 'One' } } });
    const conflict = await client
      .mutate({ mutation: CreateAccountDocument, variables: { input: { accountName: 'Two' } } })
      .catch((e: unknown) => e);
    expect(CombinedGraphQLErrors.is(conflict)).toBe(true);
    expect((conflict as CombinedGraphQLErrors).errors[0]?.extensions?.code).toBe('CONFLICT');

    const anonymous = apolloClient().client;
    const denied = await anonymous.query({ query: AccountsDocument }).catch((e: unknown) => e);
    expect(CombinedGraphQLErrors.is(denied)).toBe(true);
    expect((denied as CombinedGraphQLErrors).errors[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('works with the session cookie, as in a browser: its JSON POSTs pass the CSRF check', async () => {
    const session = await signUp(server.url);
    const { data } = await apolloClient(undefined, session.cookie).client.query({ query: ViewerDocument });
    expect(data?.viewer?.id).toBe(session.user.id);
  });
});
