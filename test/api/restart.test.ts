// A development start without ENCRYPTION_KEY or BETTER_AUTH_SECRET generates
// both once into DATA_DIR. What that must buy (docs/getting-started.md):
// after the process restarts, sessions signed before still work and stored
// keys still open. Real processes, stopped and started on the same data.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlpacaStandIns, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { gql, signUp } from '../support/client.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';
import { startServer } from '../support/server.ts';

const STORE = 'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }';
const VERIFY = 'mutation($id: UUID!) { verifyCredential(id: $id) { verification { status } } }';

let brokers: AlpacaStandIns;
let db: TestDatabase;
let dataDir: string;
let ownDir: string | undefined;

beforeAll(async () => {
  brokers = await startAlpacaStandIns();
  db = await createTestDatabase();
  // PGlite keeps its data under DATA_DIR; with PostgreSQL only the secrets go there.
  if (db.env.DATA_DIR) dataDir = db.env.DATA_DIR;
  else dataDir = ownDir = await mkdtemp(path.join(os.tmpdir(), 'bca-restart-'));
});
afterAll(async () => {
  await brokers?.close();
  await db?.drop();
  if (ownDir) await rm(ownDir, { recursive: true, force: true });
});

describe(`development secrets across a restart (${dbKind})`, () => {
  it('keeps sessions and stored keys working after a restart; a different secret would not', async () => {
    // Blank is unset: the server must generate both.
    const env = { ...brokers.env, DATA_DIR: dataDir, ENCRYPTION_KEY: '', BETTER_AUTH_SECRET: '' };
    const first = await startServer({ db, env });
    const session = await signUp(first.url);
    const account = await gql(first.url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
    const apiKey = `PKRESTART${randomUUID().replaceAll('-', '').slice(0, 11).toUpperCase()}`;
    const secretKey = `restart-secret-${randomUUID()}`;
    const stored = await gql(
      first.url,
      STORE,
      {
        input: {
          accountId: account.body.data?.getOrCreateAccount.account.id,
          credentialType: 'alpaca',
          apiKey,
          secretKey,
        },
      },
      session,
    );
    const id = stored.body.data?.storeCredential.id as string;
    expect(id).toEqual(expect.any(String));
    expect(await first.stop()).toBe(0);

    const secretsFile = path.join(dataDir, 'dev-secrets.json');
    const generated = await readFile(secretsFile, 'utf8');
    expect(Object.keys(JSON.parse(generated)).sort()).toEqual(['authSecret', 'encryptionKey']);

    const second = await startServer({ db, env });
    try {
      // The token signed by the first process is accepted by the second.
      const viewer = await gql(second.url, '{ viewer { id } }', undefined, session);
      expect(viewer.body.data?.viewer).toEqual({ id: session.user.id });
      // The keys sealed by the first process open in the second: the broker gets the very secret.
      brokers.paper.setKey(apiKey, { kind: 'account', secretKey });
      const verified = await gql(second.url, VERIFY, { id }, session);
      expect(verified.body).toEqual({ data: { verifyCredential: { verification: { status: 'VERIFIED' } } } });
      expect(brokers.paper.requests.filter((r) => r.apiKey === apiKey).map((r) => r.secretKey)).toEqual([secretKey]);
    } finally {
      expect(await second.stop()).toBe(0);
    }
    // Generated once: the restart read the file, it did not write a new one.
    expect(await readFile(secretsFile, 'utf8')).toBe(generated);

    // The control: with another BETTER_AUTH_SECRET the same token is no session,
    // so the check above could have failed.
    const other = await startServer({ db, env: { ...env, BETTER_AUTH_SECRET: randomBytes(32).toString('hex') } });
    try {
      expect((await gql(other.url, '{ viewer { id } }', undefined, session)).body.data?.viewer).toBeNull();
    } finally {
      expect(await other.stop()).toBe(0);
    }
  }, 300_000);
});
