// Many users at once: every write lands, each user sees exactly their own.
import { describe, expect, it } from 'vitest';
import { gql, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';

const server = useInProcessServer();

const STORE = 'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id nickname } }';
const GET_OR_CREATE = 'mutation { getOrCreateAccount { created account { id } } }';

describe(`concurrency (${dbKind})`, () => {
  it('stores 200 credentials in parallel across 20 users while one user races getOrCreateAccount 50 times', async () => {
    const users: { session: Session; accountId: string }[] = [];
    for (let i = 0; i < 20; i += 1) {
      const session = await signUp(server.url, { name: `user ${i}` });
      const res = await gql(server.url, GET_OR_CREATE, undefined, session);
      users.push({ session, accountId: res.body.data?.getOrCreateAccount.account.id });
    }
    const racer = await signUp(server.url, { name: 'racer' });

    const stores = users.flatMap(({ session, accountId }, u) =>
      Array.from({ length: 10 }, (_, i) =>
        gql(
          server.url,
          STORE,
          {
            input: {
              accountId,
              credentialType: 'alpaca',
              apiKey: `PKUSER${u}KEY${i}ABCDEF`,
              secretKey: `secret-${u}-${i}`,
              nickname: `u${u}-c${i}`,
            },
          },
          session,
        ),
      ),
    );
    const races = Array.from({ length: 50 }, () => gql(server.url, GET_OR_CREATE, undefined, racer));
    const [stored, raced] = await Promise.all([Promise.all(stores), Promise.all(races)]);

    for (const res of [...stored, ...raced]) {
      expect(res.status).toBe(200);
      expect(res.body.errors).toBeUndefined();
    }
    expect(raced.filter((r) => r.body.data?.getOrCreateAccount.created)).toHaveLength(1);
    expect(new Set(raced.map((r) => r.body.data?.getOrCreateAccount.account.id)).size).toBe(1);

    for (const [u, { session }] of users.entries()) {
      const res = await gql(server.url, '{ accounts { credentials { nickname } } }', undefined, session);
      const nicknames = res.body.data?.accounts.flatMap((a: { credentials: { nickname: string }[] }) =>
        a.credentials.map((c) => c.nickname),
      );
      expect([...nicknames].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `u${u}-c${i}`).sort());
    }
  });
});
