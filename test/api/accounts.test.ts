// The Account API through HTTP against the composed app (in-process, real database).
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { errorOf, gql, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';

const server = useInProcessServer();
let url: string;

const ACCOUNT = 'id userId accountName isActive createdAt updatedAt';
const GET_OR_CREATE = `mutation($input: GetOrCreateAccountInput) { getOrCreateAccount(input: $input) { created account { ${ACCOUNT} } } }`;
const CREATE = `mutation($input: CreateAccountInput!) { createAccount(input: $input) { ${ACCOUNT} } }`;
const UPDATE = `mutation($id: UUID!, $input: UpdateAccountInput!) { updateAccount(id: $id, input: $input) { ${ACCOUNT} } }`;
const ACCOUNTS = `{ accounts { ${ACCOUNT} } }`;
const ACCOUNT_BY_ID = `query($id: UUID!) { account(id: $id) { ${ACCOUNT} } }`;

async function accountsOf(session: Session) {
  const res = await gql(url, ACCOUNTS, undefined, session);
  expect(res.body.errors).toBeUndefined();
  return res.body.data?.accounts as { id: string; accountName: string; isActive: boolean; updatedAt: string }[];
}

beforeAll(async () => {
  url = server.url;
});

describe(`Account API (${dbKind})`, () => {
  it('creates an account with createAccount, lists it, and refuses a second one with CONFLICT', async () => {
    const user = await signUp(url);
    const created = await gql(url, CREATE, { input: { accountName: '  Paper trading  ' } }, user);
    expect(created.body.errors).toBeUndefined();
    const account = created.body.data?.createAccount;
    expect(account).toMatchObject({ userId: user.user.id, accountName: 'Paper trading', isActive: true });
    expect(account.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(account.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000);

    const again = await gql(url, CREATE, { input: { accountName: 'Second' } }, user);
    expect(errorOf(again).code).toBe('CONFLICT');
    expect(await accountsOf(user)).toEqual([account]);
  });

  it('getOrCreateAccount creates with the default name once, then returns the same account', async () => {
    const user = await signUp(url);
    const first = await gql(url, GET_OR_CREATE, {}, user);
    expect(first.body.data?.getOrCreateAccount).toMatchObject({
      created: true,
      account: { accountName: 'Default Alpaca Account', userId: user.user.id },
    });
    const second = await gql(url, GET_OR_CREATE, { input: { accountName: 'Ignored, it exists' } }, user);
    expect(second.body.data?.getOrCreateAccount).toEqual({
      created: false,
      account: first.body.data?.getOrCreateAccount.account,
    });
  });

  it('getOrCreateAccount uses the given name when it creates', async () => {
    const user = await signUp(url);
    const res = await gql(url, GET_OR_CREATE, { input: { accountName: ' Live ' } }, user);
    expect(res.body.data?.getOrCreateAccount).toMatchObject({ created: true, account: { accountName: 'Live' } });
  });

  it('getOrCreateAccount is race-safe: 50 concurrent calls make one account, one created=true, no error', async () => {
    const user = await signUp(url);
    const results = await Promise.all(Array.from({ length: 50 }, () => gql(url, GET_OR_CREATE, {}, user)));
    for (const res of results) {
      expect(res.status).toBe(200);
      expect(res.body.errors).toBeUndefined();
    }
    const payloads = results.map(
      (r) => r.body.data?.getOrCreateAccount as { created: boolean; account: { id: string } },
    );
    expect(payloads.filter((p) => p.created)).toHaveLength(1);
    expect(new Set(payloads.map((p) => p.account.id)).size).toBe(1);
    expect(await accountsOf(user)).toHaveLength(1);
  });

  it("account(id) returns the caller's account, and null for unknown ids", async () => {
    const user = await signUp(url);
    const { account } = (await gql(url, GET_OR_CREATE, {}, user)).body.data!.getOrCreateAccount;
    expect((await gql(url, ACCOUNT_BY_ID, { id: account.id }, user)).body.data?.account).toEqual(account);
    const unknown = await gql(url, ACCOUNT_BY_ID, { id: randomUUID() }, user);
    expect(unknown.body).toEqual({ data: { account: null } });
  });

  it('updateAccount changes only the given fields and moves updatedAt forward', async () => {
    const user = await signUp(url);
    const { account } = (await gql(url, GET_OR_CREATE, {}, user)).body.data!.getOrCreateAccount;
    await new Promise((r) => setTimeout(r, 5));
    const renamed = await gql(
      url,
      UPDATE,
      { id: account.id, input: { accountName: ' Renamed ', isActive: null } },
      user,
    );
    expect(renamed.body.errors).toBeUndefined();
    expect(renamed.body.data?.updateAccount).toMatchObject({ id: account.id, accountName: 'Renamed', isActive: true });
    expect(Date.parse(renamed.body.data?.updateAccount.updatedAt)).toBeGreaterThan(Date.parse(account.updatedAt));
    expect(renamed.body.data?.updateAccount.createdAt).toBe(account.createdAt);

    const paused = await gql(url, UPDATE, { id: account.id, input: { isActive: false } }, user);
    expect(paused.body.data?.updateAccount).toMatchObject({ accountName: 'Renamed', isActive: false });
    expect(await accountsOf(user)).toEqual([paused.body.data?.updateAccount]);
  });

  it('updateAccount on an unknown id is NOT_FOUND', async () => {
    const user = await signUp(url);
    const res = await gql(url, UPDATE, { id: randomUUID(), input: { accountName: 'x' } }, user);
    expect(errorOf(res).code).toBe('NOT_FOUND');
    const empty = await gql(url, UPDATE, { id: randomUUID(), input: {} }, user);
    expect(errorOf(empty).code).toBe('NOT_FOUND');
  });

  it('rejects bad account names with BAD_USER_INPUT naming the field, and writes nothing', async () => {
    const user = await signUp(url);
    const bad = ['', '   ', 'x'.repeat(101), 'tab\tinside', 'nul\u0000inside', '\ud800lone surrogate'];
    for (const accountName of bad) {
      const res = await gql(url, CREATE, { input: { accountName } }, user);
      expect(errorOf(res), JSON.stringify(accountName)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'accountName' });
      const viaGetOrCreate = await gql(url, GET_OR_CREATE, { input: { accountName } }, user);
      expect(errorOf(viaGetOrCreate).code).toBe('BAD_USER_INPUT');
    }
    expect(await accountsOf(user)).toEqual([]);

    const { account } = (await gql(url, GET_OR_CREATE, {}, user)).body.data!.getOrCreateAccount;
    const res = await gql(
      url,
      UPDATE,
      { id: account.id, input: { accountName: 'y'.repeat(101), isActive: false } },
      user,
    );
    expect(errorOf(res)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'accountName' });
    expect(await accountsOf(user)).toEqual([account]);
  });

  it('accepts a 100-character name of multi-byte characters', async () => {
    const user = await signUp(url);
    const accountName = '日本語🙂'.repeat(25);
    const res = await gql(url, CREATE, { input: { accountName } }, user);
    expect(res.body.data?.createAccount.accountName).toBe(accountName);
  });
});

describe(`isolation between users (${dbKind})`, () => {
  let alice: Session;
  let bob: Session;
  let aliceAccount: { id: string; accountName: string };

  beforeAll(async () => {
    alice = await signUp(url, { name: 'Alice' });
    bob = await signUp(url, { name: 'Bob' });
    aliceAccount = (await gql(url, GET_OR_CREATE, { input: { accountName: 'Alice main' } }, alice)).body.data
      ?.getOrCreateAccount.account;
    await gql(url, GET_OR_CREATE, { input: { accountName: 'Bob main' } }, bob);
  });

  it("never shows one user another's account", async () => {
    expect((await accountsOf(bob)).map((a) => a.accountName)).toEqual(['Bob main']);
    expect((await gql(url, ACCOUNT_BY_ID, { id: aliceAccount.id }, bob)).body).toEqual({ data: { account: null } });
  });

  it("answers NOT_FOUND for another user's account exactly as for an unknown id", async () => {
    const foreign = await gql(url, UPDATE, { id: aliceAccount.id, input: { accountName: 'Hijacked' } }, bob);
    const unknown = await gql(url, UPDATE, { id: randomUUID(), input: { accountName: 'Hijacked' } }, bob);
    expect(errorOf(foreign).code).toBe('NOT_FOUND');
    expect(foreign.status).toBe(unknown.status);
    expect({ ...foreign.body, errors: foreign.body.errors?.map((e) => ({ ...e, locations: undefined })) }).toEqual({
      ...unknown.body,
      errors: unknown.body.errors?.map((e) => ({ ...e, locations: undefined })),
    });
    expect((await accountsOf(alice))[0]?.accountName).toBe('Alice main');
  });
});

describe(`without a valid session (${dbKind})`, () => {
  const protectedOperations: [string, string, Record<string, unknown>?][] = [
    ['accounts', ACCOUNTS],
    ['account', ACCOUNT_BY_ID, { id: randomUUID() }],
    ['createAccount', CREATE, { input: { accountName: 'x' } }],
    ['getOrCreateAccount', GET_OR_CREATE, {}],
    ['updateAccount', UPDATE, { id: randomUUID(), input: { accountName: 'x' } }],
  ];

  for (const [name, query, variables] of protectedOperations) {
    it(`${name} fails with UNAUTHENTICATED and HTTP 401`, async () => {
      for (const auth of [undefined, { token: 'not-a-token' }, { cookie: 'better-auth.session_token=forged.sig' }]) {
        const res = await gql(url, query, variables, auth);
        expect(res.status).toBe(401);
        expect(errorOf(res).code).toBe('UNAUTHENTICATED');
        expect(Object.values(res.body.data ?? {}).every((v) => v === null)).toBe(true);
      }
    });
  }

  it('viewer is null without a session, and nothing was written', async () => {
    const counts = () =>
      server.db.unscopedClient.$queryRaw<Record<string, number>[]>`
        SELECT (SELECT count(*)::int FROM auth_users) AS users, (SELECT count(*)::int FROM auth_sessions) AS sessions,
               (SELECT count(*)::int FROM user_accounts) AS accounts`;
    const before = await counts();
    const res = await gql(url, '{ viewer { id } }');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: { viewer: null } });
    // A mutation without a session is refused before it writes.
    const refused = await gql(url, 'mutation { getOrCreateAccount { created } }');
    expect(refused.status).toBe(401);
    expect(await counts()).toEqual(before);
  });
});
