// Credentials through HTTP against the composed app (in-process, real database).
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { errorOf, gql, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';

const server = useInProcessServer();
let url: string;

const CREDENTIAL = 'id accountId credentialType nickname apiKeyHint isActive createdAt updatedAt';
const STORE = `mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { ${CREDENTIAL} account { id } } }`;
const UPDATE = `mutation($id: UUID!, $input: UpdateCredentialInput!) { updateCredential(id: $id, input: $input) { ${CREDENTIAL} } }`;
const DELETE = 'mutation($id: UUID!) { deleteCredential(id: $id) }';
const BY_ID = `query($id: UUID!) { credential(id: $id) { ${CREDENTIAL} } }`;
const LIST = `query($type: String, $all: Boolean) { accounts { id credentials(credentialType: $type, includeInactive: $all) { ${CREDENTIAL} } } }`;

interface Credential {
  id: string;
  accountId: string;
  credentialType: string;
  nickname: string;
  apiKeyHint: string;
  isActive: boolean;
  createdAt: string;
  updatedAt: string;
}

async function userWithAccount(): Promise<{ session: Session; accountId: string }> {
  const session = await signUp(url);
  const res = await gql(url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
  return { session, accountId: res.body.data?.getOrCreateAccount.account.id };
}

const input = (accountId: string, extra: Record<string, unknown> = {}) => ({
  accountId,
  credentialType: 'alpaca',
  apiKey: `PK${randomUUID().replaceAll('-', '').slice(0, 14).toUpperCase()}X7Q2`,
  secretKey: `sk-${randomUUID()}`,
  ...extra,
});

async function store(session: Session, accountId: string, extra: Record<string, unknown> = {}): Promise<Credential> {
  const res = await gql(url, STORE, { input: input(accountId, extra) }, session);
  expect(res.body.errors).toBeUndefined();
  const { account, ...credential } = res.body.data!.storeCredential;
  expect(account).toEqual({ id: accountId });
  return credential;
}

async function list(session: Session, vars: { type?: string; all?: boolean } = {}): Promise<Credential[]> {
  const res = await gql(url, LIST, vars, session);
  expect(res.body.errors).toBeUndefined();
  return res.body.data?.accounts.flatMap((a: { credentials: Credential[] }) => a.credentials);
}

beforeAll(async () => {
  url = server.url;
});

describe(`storing credentials (${dbKind})`, () => {
  it('stores a credential and shows only a masked hint of the API key', async () => {
    const { session, accountId } = await userWithAccount();
    const res = await gql(url, STORE, { input: input(accountId, { apiKey: '  PKABCDEFGHIJKLX7Q2  ' }) }, session);
    const credential = res.body.data?.storeCredential;
    expect(credential).toMatchObject({
      accountId,
      credentialType: 'alpaca',
      nickname: 'alpaca',
      apiKeyHint: '••••X7Q2',
      isActive: true,
      account: { id: accountId },
    });
    expect(res.text).not.toContain('PKABCDEFGHIJKL');
    expect((await gql(url, BY_ID, { id: credential.id }, session)).body.data?.credential).toEqual({
      ...credential,
      account: undefined,
    });
  });

  it('defaults the nickname to the credential type when absent, null, empty or blank; trims a given one', async () => {
    const { session, accountId } = await userWithAccount();
    for (const nickname of [undefined, null, '', '   ']) {
      expect((await store(session, accountId, { nickname })).nickname).toBe('alpaca');
    }
    expect((await store(session, accountId, { nickname: '  Paper account 1 ' })).nickname).toBe('Paper account 1');
  });

  it('allows several credentials of the same type on one account, listed oldest first', async () => {
    const { session, accountId } = await userWithAccount();
    const a = await store(session, accountId, { nickname: 'A' });
    const b = await store(session, accountId, { nickname: 'B' });
    const c = await store(session, accountId, { credentialType: 'alpaca_paper', nickname: 'C' });
    expect((await list(session)).map((x) => x.id)).toEqual([a.id, b.id, c.id]);
    expect((await list(session, { type: 'alpaca' })).map((x) => x.id)).toEqual([a.id, b.id]);
    expect((await list(session, { type: 'alpaca_paper' })).map((x) => x.id)).toEqual([c.id]);
  });

  it('refuses an account that does not exist with NOT_FOUND, and writes nothing', async () => {
    const { session } = await userWithAccount();
    const res = await gql(url, STORE, { input: input(randomUUID()) }, session);
    expect(errorOf(res).code).toBe('NOT_FOUND');
    expect(await list(session)).toEqual([]);
  });

  it('validates every field with BAD_USER_INPUT naming it, and writes nothing', async () => {
    const { session, accountId } = await userWithAccount();
    const cases: [Record<string, unknown>, string][] = [
      [{ credentialType: 'Alpaca' }, 'credentialType'],
      [{ credentialType: 'a' }, 'credentialType'],
      [{ credentialType: `a${'b'.repeat(32)}` }, 'credentialType'],
      [{ credentialType: 'alp aca' }, 'credentialType'],
      [{ apiKey: '' }, 'apiKey'],
      [{ apiKey: '   ' }, 'apiKey'],
      [{ apiKey: 'k'.repeat(257) }, 'apiKey'],
      [{ apiKey: 'PK\u0000KEY' }, 'apiKey'],
      [{ secretKey: '' }, 'secretKey'],
      [{ secretKey: 's'.repeat(257) }, 'secretKey'],
      [{ secretKey: 'line\nbreak' }, 'secretKey'],
      [{ nickname: 'n'.repeat(101) }, 'nickname'],
    ];
    for (const [extra, field] of cases) {
      const res = await gql(url, STORE, { input: input(accountId, extra) }, session);
      expect(errorOf(res), JSON.stringify(extra).slice(0, 60)).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
    expect(await list(session, { all: true })).toEqual([]);
    // The bounds themselves are fine.
    await store(session, accountId, {
      apiKey: 'k'.repeat(256),
      secretKey: 's'.repeat(256),
      nickname: ` ${'n'.repeat(100)} `,
    });
  });
});

describe(`changing credentials (${dbKind})`, () => {
  it('keeps fields left out or null, resets a blank nickname, and moves updatedAt forward', async () => {
    const { session, accountId } = await userWithAccount();
    const original = await store(session, accountId, { nickname: 'Main' });
    await new Promise((r) => setTimeout(r, 5));

    const nulls = await gql(
      url,
      UPDATE,
      { id: original.id, input: { nickname: null, apiKey: null, isActive: null } },
      session,
    );
    expect(nulls.body.data?.updateCredential).toMatchObject({
      nickname: 'Main',
      apiKeyHint: original.apiKeyHint,
      isActive: true,
    });

    const renamed = (await gql(url, UPDATE, { id: original.id, input: { nickname: '  Renamed ' } }, session)).body.data
      ?.updateCredential as Credential;
    expect(renamed).toMatchObject({
      nickname: 'Renamed',
      apiKeyHint: original.apiKeyHint,
      createdAt: original.createdAt,
    });
    expect(Date.parse(renamed.updatedAt)).toBeGreaterThan(Date.parse(original.updatedAt));

    const reset = await gql(url, UPDATE, { id: original.id, input: { nickname: '   ' } }, session);
    expect(reset.body.data?.updateCredential.nickname).toBe('alpaca');
  });

  it('re-encrypts a new API key or secret, and the hint follows the API key', async () => {
    const { session, accountId } = await userWithAccount();
    const original = await store(session, accountId);
    const res = await gql(url, UPDATE, { id: original.id, input: { apiKey: 'PKNEWKEYVALUE0000ZZ99' } }, session);
    expect(res.body.data?.updateCredential.apiKeyHint).toBe('••••ZZ99');
    const secretOnly = await gql(url, UPDATE, { id: original.id, input: { secretKey: 'a new secret' } }, session);
    expect(secretOnly.body.data?.updateCredential.apiKeyHint).toBe('••••ZZ99');
    expect(Date.parse(secretOnly.body.data?.updateCredential.updatedAt)).toBeGreaterThanOrEqual(
      Date.parse(res.body.data?.updateCredential.updatedAt),
    );
  });

  it('hides deactivated credentials from the list unless includeInactive', async () => {
    const { session, accountId } = await userWithAccount();
    const kept = await store(session, accountId);
    const paused = await store(session, accountId);
    await gql(url, UPDATE, { id: paused.id, input: { isActive: false } }, session);
    expect((await list(session)).map((c) => c.id)).toEqual([kept.id]);
    expect((await list(session, { all: true })).map((c) => [c.id, c.isActive])).toEqual([
      [kept.id, true],
      [paused.id, false],
    ]);
    expect((await gql(url, BY_ID, { id: paused.id }, session)).body.data?.credential.isActive).toBe(false);
  });

  it('validates updates with BAD_USER_INPUT and changes nothing', async () => {
    const { session, accountId } = await userWithAccount();
    const original = await store(session, accountId, { nickname: 'Keep' });
    for (const [change, field] of [
      [{ apiKey: '  ', nickname: 'Changed' }, 'apiKey'],
      [{ secretKey: 'x'.repeat(300) }, 'secretKey'],
      [{ nickname: 'n'.repeat(101), isActive: false }, 'nickname'],
    ] as const) {
      const res = await gql(url, UPDATE, { id: original.id, input: change }, session);
      expect(errorOf(res)).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
    expect((await gql(url, BY_ID, { id: original.id }, session)).body.data?.credential).toEqual(original);
  });

  it('deletes a credential, whose id is NOT_FOUND for every later call', async () => {
    const { session, accountId } = await userWithAccount();
    const doomed = await store(session, accountId);
    const res = await gql(url, DELETE, { id: doomed.id }, session);
    expect(res.body).toEqual({ data: { deleteCredential: doomed.id } });
    expect((await gql(url, BY_ID, { id: doomed.id }, session)).body.data?.credential).toBeNull();
    expect(errorOf(await gql(url, UPDATE, { id: doomed.id, input: { nickname: 'x' } }, session)).code).toBe(
      'NOT_FOUND',
    );
    expect(errorOf(await gql(url, UPDATE, { id: doomed.id, input: { apiKey: 'x1234' } }, session)).code).toBe(
      'NOT_FOUND',
    );
    expect(errorOf(await gql(url, DELETE, { id: doomed.id }, session)).code).toBe('NOT_FOUND');
    expect(await list(session, { all: true })).toEqual([]);
  });
});

describe(`credential isolation between users (${dbKind})`, () => {
  let alice: { session: Session; accountId: string };
  let bob: { session: Session; accountId: string };
  let secret: Credential;

  beforeAll(async () => {
    alice = await userWithAccount();
    bob = await userWithAccount();
    secret = await store(alice.session, alice.accountId, { nickname: 'Alice live' });
    await store(bob.session, bob.accountId, { nickname: 'Bob paper' });
  });

  /** Same answer for Alice's id as for an id that never existed (locations aside). */
  async function sameAsUnknown(query: string, vars: (id: string) => Record<string, unknown>) {
    const strip = (r: { body: { errors?: unknown[] } }) =>
      JSON.stringify({ ...r.body, errors: r.body.errors?.map((e) => ({ ...(e as object), locations: undefined })) });
    const foreign = await gql(url, query, vars(secret.id), bob.session);
    const unknown = await gql(url, query, vars(randomUUID()), bob.session);
    expect(foreign.status).toBe(unknown.status);
    expect(strip(foreign).replaceAll(secret.id, 'ID')).toBe(strip(unknown).replace(/[0-9a-f-]{36}/g, 'ID'));
    return foreign;
  }

  it("cannot read another user's credential", async () => {
    const res = await sameAsUnknown(BY_ID, (id) => ({ id }));
    expect(res.body.data?.credential).toBeNull();
    expect((await list(bob.session, { all: true })).map((c) => c.nickname)).toEqual(['Bob paper']);
  });

  it("cannot update or delete another user's credential: NOT_FOUND, as for an unknown id", async () => {
    expect(errorOf(await sameAsUnknown(UPDATE, (id) => ({ id, input: { nickname: 'Hijacked' } }))).code).toBe(
      'NOT_FOUND',
    );
    expect(errorOf(await sameAsUnknown(UPDATE, (id) => ({ id, input: { apiKey: 'attacker-key' } }))).code).toBe(
      'NOT_FOUND',
    );
    expect(errorOf(await sameAsUnknown(DELETE, (id) => ({ id }))).code).toBe('NOT_FOUND');
  });

  it("cannot store a credential under another user's account: NOT_FOUND", async () => {
    const res = await gql(url, STORE, { input: input(alice.accountId) }, bob.session);
    expect(errorOf(res).code).toBe('NOT_FOUND');
    expect((await list(alice.session)).map((c) => c.id)).toEqual([secret.id]);
  });

  it("leaves the owner's credential exactly as it was", async () => {
    // Bob's attempts again, so this asserts something when run alone too.
    const hijack = { nickname: 'Hijacked', apiKey: 'attacker-key', secretKey: 'attacker-secret', isActive: false };
    expect(errorOf(await gql(url, UPDATE, { id: secret.id, input: hijack }, bob.session)).code).toBe('NOT_FOUND');
    expect(errorOf(await gql(url, DELETE, { id: secret.id }, bob.session)).code).toBe('NOT_FOUND');
    expect((await gql(url, BY_ID, { id: secret.id }, alice.session)).body.data?.credential).toEqual(secret);
  });

  it('refuses every credential operation without a session (401)', async () => {
    for (const [query, vars] of [
      [BY_ID, { id: secret.id }],
      [STORE, { input: input(alice.accountId) }],
      [UPDATE, { id: secret.id, input: { nickname: 'x' } }],
      [DELETE, { id: secret.id }],
    ] as const) {
      const res = await gql(url, query, vars);
      expect(res.status).toBe(401);
      expect(errorOf(res).code).toBe('UNAUTHENTICATED');
    }
  });
});
