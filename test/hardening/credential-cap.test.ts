// MAX_CREDENTIALS_PER_ACCOUNT (docs/configuration.md): storeCredential beyond it
// fails with LIMIT_EXCEEDED and writes nothing, and concurrent stores at the
// boundary cannot pass it, because the database counts under a lock on the
// account (migration 20261202000200_credential_cap).
import { describe, expect, it } from 'vitest';
import { Keyring } from '../../src/crypto/keyring.ts';
import { errorOf, gql, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { type InProcessServer, useInProcessServer } from '../support/in-process.ts';
import { seedCredentials } from '../support/seed.ts';
import { testSecrets } from '../support/server.ts';

const STORE = 'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }';
const DELETE = 'mutation($id: UUID!) { deleteCredential(id: $id) }';
const COUNTS =
  '{ accounts { credentials(includeInactive: true) { id } } credentialEvents(first: 100) { edges { node { action } } } }';

async function accountOf(server: InProcessServer, session: Session): Promise<string> {
  const res = await gql(server.url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
  return res.body.data?.getOrCreateAccount.account.id as string;
}

const store = (server: InProcessServer, session: Session, accountId: string, i: number) =>
  gql(
    server.url,
    STORE,
    {
      input: {
        accountId,
        credentialType: 'alpaca',
        apiKey: `PKCAP${String(i).padStart(12, '0')}`,
        secretKey: `s-${i}`,
      },
    },
    session,
  );

/** How many credentials the account holds and how many STORED events the user has, as the API shows them. */
async function counts(server: InProcessServer, session: Session) {
  const res = await gql(server.url, COUNTS, undefined, session);
  const data = res.body.data as {
    accounts: { credentials: unknown[] }[];
    credentialEvents: { edges: { node: { action: string } }[] };
  };
  return {
    credentials: data.accounts[0]?.credentials.length ?? 0,
    stored: data.credentialEvents.edges.filter((e) => e.node.action === 'STORED').length,
  };
}

describe(`credential cap, configured (${dbKind})`, () => {
  const server = useInProcessServer({ env: { MAX_CREDENTIALS_PER_ACCOUNT: '5' } });

  it('lets exactly the cap through when 12 stores race, refuses the rest with LIMIT_EXCEEDED, writes nothing for them', async () => {
    const alice = await signUp(server.url);
    const bob = await signUp(server.url);
    const [aliceAccount, bobAccount] = await Promise.all([accountOf(server, alice), accountOf(server, bob)]);
    for (let i = 0; i < 3; i += 1) expect((await store(server, alice, aliceAccount, i)).body.errors).toBeUndefined();

    // 12 at once for Alice (2 places left), and Bob's account beside them, unaffected.
    const results = await Promise.all([
      ...Array.from({ length: 12 }, (_, i) => store(server, alice, aliceAccount, 100 + i)),
      store(server, bob, bobAccount, 1),
    ]);
    const bobResult = results.pop();
    expect(bobResult?.body.errors).toBeUndefined();
    const ok = results.filter((r) => !r.body.errors);
    const refused = results.filter((r) => r.body.errors);
    expect(ok).toHaveLength(2);
    expect(refused).toHaveLength(10);
    for (const res of refused) {
      expect(res.status).toBe(200);
      expect(res.body.data ?? null).toBeNull();
      expect(res.body.errors?.[0]?.extensions).toEqual({
        code: 'LIMIT_EXCEEDED',
        limit: 'MAX_CREDENTIALS_PER_ACCOUNT',
      });
      expect(errorOf(res).message).toBe('An account holds at most 5 credentials: delete one before storing another.');
    }
    expect(await counts(server, alice)).toEqual({ credentials: 5, stored: 5 });
    expect(await counts(server, bob)).toEqual({ credentials: 1, stored: 1 });

    // Inactive credentials count too; deleting one makes room for exactly one.
    const listed = await gql(server.url, '{ accounts { credentials { id } } }', undefined, alice);
    const first = listed.body.data?.accounts[0].credentials[0].id as string;
    await gql(
      server.url,
      'mutation($id: UUID!) { updateCredential(id: $id, input: { isActive: false }) { id } }',
      { id: first },
      alice,
    );
    expect(errorOf(await store(server, alice, aliceAccount, 200)).code).toBe('LIMIT_EXCEEDED');
    expect((await gql(server.url, DELETE, { id: first }, alice)).body.errors).toBeUndefined();
    const again = await Promise.all(Array.from({ length: 4 }, (_, i) => store(server, alice, aliceAccount, 300 + i)));
    expect(again.filter((r) => !r.body.errors)).toHaveLength(1);
    expect(await counts(server, alice)).toEqual({ credentials: 5, stored: 6 });
  });
});

describe(`credential cap, default of 100 (${dbKind})`, () => {
  const server = useInProcessServer();

  it('holds at 100 against 20 concurrent stores, and in the database itself, not only in the resolver', async () => {
    const carol = await signUp(server.url);
    const accountId = await accountOf(server, carol);
    const keyring = new Keyring({ id: 'test', key: Buffer.from(testSecrets.ENCRYPTION_KEY, 'base64') });
    await seedCredentials(server.db, keyring, carol.user.id, accountId, 99);

    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store(server, carol, accountId, i)));
    expect(results.filter((r) => !r.body.errors)).toHaveLength(1);
    expect(results.filter((r) => errorOf(r).code === 'LIMIT_EXCEEDED')).toHaveLength(19);
    expect((await counts(server, carol)).credentials).toBe(100);

    // Straight to the database, in the user's scope, without the resolver: refused there too.
    await expect(seedCredentials(server.db, keyring, carol.user.id, accountId, 1)).rejects.toThrow(
      /at most 100 credentials/,
    );
    expect((await counts(server, carol)).credentials).toBe(100);
  });
});
