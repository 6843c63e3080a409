// Failure behaviour: the database going away and coming back, and mutations
// that fail half-way. Nothing half-written, clear errors, recovery on its own.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { errorOf, gql, rawSignIn, type Session, signUp } from '../support/client.ts';
import { adminQuery, dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';

const server = useInProcessServer();

const STORE = (alias: string, accountId: string, credentialType: string) =>
  `${alias}: storeCredential(input: { accountId: "${accountId}", credentialType: "${credentialType}", apiKey: "PKAAAABBBBCCCCDDDD11", secretKey: "s3cr3t-${randomUUID()}" }) { id }`;

async function accountOf(session: Session): Promise<string> {
  const res = await gql(server.url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
  return res.body.data?.getOrCreateAccount.account.id;
}

const credentialCount = async (session: Session) =>
  (await gql(server.url, '{ accounts { credentials(includeInactive: true) { id } } }', undefined, session)).body.data
    ?.accounts[0]?.credentials.length as number;

describe(`a mutation failing after its first write leaves nothing behind (${dbKind})`, () => {
  it('rolls back the first storeCredential when the second in the same document fails', async () => {
    const user = await signUp(server.url);
    const accountId = await accountOf(user);
    const res = await gql(
      server.url,
      `mutation { ${STORE('first', accountId, 'alpaca')} ${STORE('second', accountId, 'BAD TYPE')} }`,
      undefined,
      user,
    );
    expect(errorOf(res)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'credentialType' });
    expect(await credentialCount(user)).toBe(0);
  });

  it('rolls back an account created by getOrCreateAccount when createAccount then conflicts', async () => {
    const user = await signUp(server.url);
    const res = await gql(
      server.url,
      'mutation { getOrCreateAccount { created } createAccount(input: { accountName: "Second" }) { id } }',
      undefined,
      user,
    );
    expect(errorOf(res).code).toBe('CONFLICT');
    expect((await gql(server.url, '{ accounts { id } }', undefined, user)).body.data?.accounts).toEqual([]);
  });
});

describe.runIf(dbKind === 'postgres')('the database going away (postgres)', () => {
  const database = () => new URL(server.testDb.url as string).pathname.slice(1);
  const cutOff = async () => {
    await adminQuery(`ALTER DATABASE ${database()} ALLOW_CONNECTIONS false`);
    await adminQuery(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [database()],
    );
  };
  const restore = () => adminQuery(`ALTER DATABASE ${database()} ALLOW_CONNECTIONS true`);

  it('answers 503 on /ready and SERVICE_UNAVAILABLE on GraphQL while it is down, writes nothing, and recovers by itself', async () => {
    const user = await signUp(server.url);
    const accountId = await accountOf(user);
    await cutOff();
    try {
      expect((await fetch(`${server.url}/ready`)).status).toBe(503);
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      const read = await gql(server.url, '{ accounts { id } }', undefined, user);
      expect(read.status).toBe(503);
      expect(errorOf(read).code).toBe('SERVICE_UNAVAILABLE');
      const write = await gql(server.url, `mutation { ${STORE('x', accountId, 'alpaca')} }`, undefined, user);
      expect(errorOf(write).code).toBe('SERVICE_UNAVAILABLE');
      expect(write.text).not.toMatch(/prisma|postgres|at .*\.ts:\d+/i);
      const signIn = await rawSignIn(server.url, user.email, user.password);
      expect(signIn.status).toBe(503);
    } finally {
      await restore();
    }
    const back = Date.now();
    let recovered = 0;
    for (;;) {
      const ready = await fetch(`${server.url}/ready`);
      const query = await gql(server.url, '{ accounts { id } }', undefined, user);
      if (ready.status === 200 && query.status === 200) {
        recovered = Date.now() - back;
        break;
      }
      // A deadline, not a measurement: on a loaded machine recovery is slower, not wrong.
      if (Date.now() - back > 20_000) throw new Error('did not recover within 20 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    console.info(`recovered ${recovered} ms after the database accepted connections again`);
    expect(await credentialCount(user)).toBe(0);
  });

  it('recovers from every connection being killed under it (pg_terminate_backend)', async () => {
    const user = await signUp(server.url);
    await accountOf(user);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [database()]);
    const started = Date.now();
    const statuses: number[] = [];
    for (;;) {
      const res = await gql(server.url, '{ accounts { id } }', undefined, user);
      statuses.push(res.status);
      expect([200, 503]).toContain(res.status);
      if (res.status === 200) break;
      if (Date.now() - started > 20_000) throw new Error(`not recovered: ${statuses.join(',')}`);
    }
    expect(statuses.filter((s) => s !== 200).length).toBeLessThanOrEqual(10);
  });
});
