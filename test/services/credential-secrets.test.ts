// The server-side read of a credential's secrets, on a real database.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecryptionError } from '../../src/crypto/cipher.ts';
import { defaultKeyId, Keyring } from '../../src/crypto/keyring.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { NotFoundError } from '../../src/domain/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { readCredentialSecrets } from '../../src/services/credential-secrets.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';
import { type SeededUser, seedUser } from '../support/seed.ts';

const key = randomBytes(32);
const keyring = new Keyring({ id: defaultKeyId(key), key });
let tdb: TestDatabase;
let db: Database;
let alice: SeededUser;
let bob: SeededUser;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
  alice = await seedUser(db, keyring, 2);
  bob = await seedUser(db, keyring, 1);
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

describe(`readCredentialSecrets (${dbKind})`, () => {
  it("returns the owner's plaintext secrets", async () => {
    for (const c of alice.credentials) {
      expect(await readCredentialSecrets(db, keyring, alice.userId, c.id)).toEqual({
        apiKey: c.apiKey,
        secretKey: c.secretKey,
      });
    }
  });

  it("is NOT_FOUND for another user's credential and for unknown ids", async () => {
    const [first] = alice.credentials;
    await expect(readCredentialSecrets(db, keyring, bob.userId, first?.id as string)).rejects.toThrow(NotFoundError);
    await expect(readCredentialSecrets(db, keyring, alice.userId, randomUUID())).rejects.toThrow(NotFoundError);
  });

  it('refuses a ciphertext copied into another row', async () => {
    const [a, b] = alice.credentials;
    if (!a || !b) throw new Error('seed two credentials');
    await db.withUser(alice.userId, async (tx) => {
      const source = await tx.credential.findUniqueOrThrow({ where: { id: a.id } });
      await tx.credential.update({
        where: { id: b.id },
        data: { apiKeyCiphertext: source.apiKeyCiphertext, secretKeyCiphertext: source.secretKeyCiphertext },
      });
    });
    await expect(readCredentialSecrets(db, keyring, alice.userId, b.id)).rejects.toThrow(DecryptionError);
    expect((await readCredentialSecrets(db, keyring, alice.userId, a.id)).apiKey).toBe(alice.credentials[0]?.apiKey);
  });
});
