// The generated SDK, imported through the package's "./sdk" export as any
// TypeScript consumer would, against a real server process.

import { type Client, createClient, GraphQLRequestError } from 'brokerage-credentials-api/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useServer } from '../support/server.ts';

// The Alpaca stand-in (the one mock) must listen before the server starts.
const brokers = await startAlpacaStandIns();
afterAll(() => brokers.close());
const server = useServer({ env: brokers.env });
let endpoint: string;

beforeAll(async () => {
  endpoint = `${server.url}/graphql`;
});

/** Runs `call` and returns the GraphQLRequestError it must throw. */
async function failure(call: Promise<unknown>): Promise<GraphQLRequestError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GraphQLRequestError);
  return error as GraphQLRequestError;
}

describe(`typed SDK client (${dbKind})`, () => {
  it('runs the whole user flow: account, two credentials, list, update, delete', async () => {
    const session = await signUp(server.url, { name: 'Ada' });
    const client: Client = createClient({ url: endpoint, token: session.token });

    expect((await client.Viewer()).viewer).toEqual({ id: session.user.id, email: session.email, name: 'Ada' });

    const first = await client.GetOrCreateAccount();
    expect(first.getOrCreateAccount).toMatchObject({
      created: true,
      account: { accountName: 'Default Alpaca Account' },
    });
    const account = first.getOrCreateAccount.account;
    const again = await client.GetOrCreateAccount({ input: { accountName: 'Ignored' } });
    expect(again.getOrCreateAccount).toEqual({ created: false, account });

    const { storeCredential: paper } = await client.StoreCredential({
      input: {
        accountId: account.id,
        credentialType: 'alpaca',
        apiKey: 'PKAAAAAAAAAAAAAAA7Q2',
        secretKey: 'paper-secret',
        nickname: '  Paper account 1 ',
      },
    });
    expect(paper).toMatchObject({
      accountId: account.id,
      nickname: 'Paper account 1',
      apiKeyHint: '••••A7Q2',
      isActive: true,
    });
    const { storeCredential: plain } = await client.StoreCredential({
      input: {
        accountId: account.id,
        credentialType: 'alpaca',
        apiKey: 'PKBBBBBBBBBBBBBBBB01',
        secretKey: 'other-secret',
      },
    });
    expect(plain.nickname).toBe('alpaca');

    const listed = await client.Accounts({ credentialType: 'alpaca' });
    expect(listed.accounts).toEqual([{ ...account, credentials: [paper, plain] }]);
    expect(JSON.stringify(listed)).not.toMatch(/secret|PKAAAA|PKBBBB/);

    const { updateCredential: renamed } = await client.UpdateCredential({ id: plain.id, input: { nickname: 'Live' } });
    expect(renamed).toMatchObject({ id: plain.id, nickname: 'Live', apiKeyHint: plain.apiKeyHint });
    expect(Date.parse(renamed.updatedAt)).toBeGreaterThan(Date.parse(plain.updatedAt));
    const { updateAccount } = await client.UpdateAccount({ id: account.id, input: { accountName: 'Paper and live' } });
    expect(updateAccount.accountName).toBe('Paper and live');

    expect((await client.DeleteCredential({ id: paper.id })).deleteCredential).toBe(paper.id);
    expect((await client.Credential({ id: paper.id })).credential).toBeNull();
    const { credential } = await client.Credential({ id: plain.id });
    expect(credential).toMatchObject({ nickname: 'Live', account: { id: account.id, accountName: 'Paper and live' } });
    const { account: after } = await client.Account({ id: account.id, includeInactive: true });
    expect(after?.credentials.map((c) => c.nickname)).toEqual(['Live']);

    // The audit trail: a deleted credential's history stays; pages follow endCursor.
    const { credentialEvents: deleted } = await client.CredentialEvents({ credentialId: paper.id });
    expect(deleted.edges.map((e) => e.node.action)).toEqual(['DELETED', 'STORED']);
    const { credential: history } = await client.CredentialHistory({ id: plain.id, first: 1 });
    expect(history?.events.edges.map((e) => [e.node.action, e.node.changedFields])).toEqual([
      ['UPDATED', ['nickname']],
    ]);
    expect(history?.events.pageInfo.hasNextPage).toBe(true);
    const { credential: older } = await client.CredentialHistory({
      id: plain.id,
      after: history?.events.pageInfo.endCursor,
    });
    expect(older?.events.edges.map((e) => e.node.action)).toEqual(['STORED']);
    expect(older?.events.pageInfo.hasNextPage).toBe(false);
  });

  it('throws the GraphQL errors with their codes: CONFLICT, BAD_USER_INPUT with its field, NOT_FOUND', async () => {
    const client = createClient({ url: endpoint, token: (await signUp(server.url)).token });
    const { createAccount } = await client.CreateAccount({ input: { accountName: 'Main' } });

    const conflict = await failure(client.CreateAccount({ input: { accountName: 'Second' } }));
    expect(conflict.code).toBe('CONFLICT');
    expect(conflict.status).toBe(200);

    const invalid = await failure(
      client.StoreCredential({
        input: { accountId: createAccount.id, credentialType: 'Alpaca!', apiKey: 'k', secretKey: 's' },
      }),
    );
    expect(invalid.code).toBe('BAD_USER_INPUT');
    expect(invalid.errors[0]?.extensions?.field).toBe('credentialType');

    const missing = await failure(client.DeleteCredential({ id: crypto.randomUUID() }));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toBe(missing.errors[0]?.message);
  });

  it('without a token: viewer is null, anything else throws UNAUTHENTICATED with HTTP 401', async () => {
    const anonymous = createClient({ url: endpoint });
    expect(await anonymous.Viewer()).toEqual({ viewer: null });
    const error = await failure(anonymous.Accounts());
    expect(error).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
  });

  it('reports an answer that is not GraphQL with its HTTP status', async () => {
    const error = await failure(createClient({ url: `${server.url}/no-such-endpoint` }).Viewer());
    expect(error).toMatchObject({ status: 404, errors: [] });
  });

  it('verifies a credential at the broker (VerifyCredential)', async () => {
    const session = await signUp(server.url);
    const client = createClient({ url: endpoint, token: session.token });
    const { account } = (await client.GetOrCreateAccount()).getOrCreateAccount;
    const apiKey = 'PKSDKTEST0000000001';
    brokers.paper.setKey(apiKey, { kind: 'account', secretKey: 'sdk-secret', accountNumber: 'PA3SDK000042' });
    const { storeCredential } = await client.StoreCredential({
      input: { accountId: account.id, credentialType: 'alpaca', apiKey, secretKey: 'sdk-secret' },
    });
    expect(storeCredential.verification).toMatchObject({ status: 'UNVERIFIED', checkedAt: null });
    const { verifyCredential } = await client.VerifyCredential({ id: storeCredential.id });
    expect(verifyCredential.verification).toMatchObject({
      status: 'VERIFIED',
      environment: 'PAPER',
      brokerAccountNumber: '••••0042',
      brokerAccountStatus: 'ACTIVE',
      message: null,
    });
  });
});
