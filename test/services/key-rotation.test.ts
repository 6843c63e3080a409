// Key rotation on a real database: every row moves to the new key, secrets
// and updatedAt stay the same, and rows changed meanwhile are never overwritten.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seal } from '../../src/crypto/cipher.ts';
import { sealSecrets } from '../../src/crypto/credential-sealing.ts';
import { defaultKeyId, Keyring } from '../../src/crypto/keyring.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { readCredentialSecrets } from '../../src/services/credential-secrets.ts';
import { type RotationProgress, rotateCredentialKeys } from '../../src/services/key-rotation.ts';
import { createTestDatabase, dbKind, queryDatabase, type TestDatabase } from '../support/databases.ts';
import { type SeededUser, seedUser } from '../support/seed.ts';

const newKey = () => {
  const key = randomBytes(32);
  return { id: defaultKeyId(key), key };
};
const oldKey = newKey();
const nextKey = newKey();
let tdb: TestDatabase;
let db: Database;
let users: SeededUser[];

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
  const before = new Keyring(oldKey);
  users = [await seedUser(db, before, 23), await seedUser(db, before, 7), await seedUser(db, before, 0)];
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

const keyIds = async (user: SeededUser) =>
  (await db.withUser(user.userId, (tx) => tx.credential.findMany({ select: { keyId: true } }))).map((r) => r.keyId);

describe(`rotateCredentialKeys (${dbKind})`, () => {
  it('re-encrypts every row under the new key in batches, reporting progress', async () => {
    const updatedBefore = await db.withUser(users[0]?.userId as string, (tx) =>
      tx.credential.findMany({ select: { id: true, updatedAt: true }, orderBy: { id: 'asc' } }),
    );
    const progress: RotationProgress[] = [];
    const result = await rotateCredentialKeys({
      db,
      keyring: new Keyring(nextKey, [oldKey]),
      batchSize: 5,
      onProgress: (p) => progress.push(p),
    });
    expect(result).toEqual({ done: 30, total: 30, remaining: 0 });
    expect(progress[0]).toEqual({ done: 0, total: 30 });
    expect(progress.map((p) => p.done)).toEqual([...progress.map((p) => p.done)].sort((a, b) => a - b));
    expect(progress.length).toBeGreaterThanOrEqual(1 + Math.ceil(23 / 5) + Math.ceil(7 / 5));

    for (const user of users)
      expect(new Set(await keyIds(user))).toEqual(new Set(user.credentials.length ? [nextKey.id] : []));
    // Readable with the new key alone; secrets unchanged; updatedAt untouched.
    const onlyNew = new Keyring(nextKey);
    for (const user of users) {
      for (const c of user.credentials) {
        expect(await readCredentialSecrets(db, onlyNew, user.userId, c.id)).toEqual({
          apiKey: c.apiKey,
          secretKey: c.secretKey,
        });
      }
    }
    const updatedAfter = await db.withUser(users[0]?.userId as string, (tx) =>
      tx.credential.findMany({ select: { id: true, updatedAt: true }, orderBy: { id: 'asc' } }),
    );
    expect(updatedAfter).toEqual(updatedBefore);
  });

  it('has nothing to do when run again', async () => {
    const result = await rotateCredentialKeys({ db, keyring: new Keyring(nextKey, [oldKey]), batchSize: 5 });
    expect(result).toEqual({ done: 0, total: 0, remaining: 0 });
  });

  it('moves values of the format before secrets_version was bound in to the current one, under the same key', async () => {
    const keyring = new Keyring(nextKey, [oldKey]);
    const user = await seedUser(db, new Keyring(nextKey), 4);
    // The older format (version 1): version byte 1, associated data without secrets_version.
    const legacyAad = (id: string, field: string) =>
      Buffer.from(JSON.stringify(['bca-credential-v1', id, user.userId, field, nextKey.id]), 'utf8');
    await db.withUser(user.userId, async (tx) => {
      for (const c of user.credentials) {
        const api = seal(c.apiKey, nextKey.key, legacyAad(c.id, 'apiKey'), 1);
        const secret = seal(c.secretKey, nextKey.key, legacyAad(c.id, 'secretKey'), 1);
        await tx.$executeRaw`UPDATE user_credentials SET api_key_ciphertext = ${api}, secret_key_ciphertext = ${secret} WHERE id = ${c.id}::uuid`;
      }
    });
    const formats = async () =>
      (
        await db.withUser(user.userId, (tx) =>
          tx.credential.findMany({ select: { apiKeyCiphertext: true, secretKeyCiphertext: true } }),
        )
      ).flatMap((r) => [r.apiKeyCiphertext[0], r.secretKeyCiphertext[0]]);
    expect(await formats()).toEqual(Array(8).fill(1));
    for (const c of user.credentials) {
      expect(await readCredentialSecrets(db, keyring, user.userId, c.id)).toEqual({
        apiKey: c.apiKey,
        secretKey: c.secretKey,
      });
    }

    expect(await rotateCredentialKeys({ db, keyring, batchSize: 3 })).toEqual({ done: 4, total: 4, remaining: 0 });
    expect(await formats()).toEqual(Array(8).fill(2));
    for (const c of user.credentials) {
      expect(await readCredentialSecrets(db, keyring, user.userId, c.id)).toEqual({
        apiKey: c.apiKey,
        secretKey: c.secretKey,
      });
    }
    expect(await rotateCredentialKeys({ db, keyring, batchSize: 3 })).toEqual({ done: 0, total: 0, remaining: 0 });
  });

  it.runIf(dbKind === 'postgres')(
    'never overwrites a row that the server changed after the rotation read it',
    async () => {
      const thirdKey = newKey();
      const user = await seedUser(db, new Keyring(nextKey), 3);
      const target = user.credentials[1] as SeededUser['credentials'][number];
      // Another session changes the secret under a newer key, and holds its lock...
      const other = new pg.Client({ connectionString: tdb.url });
      await other.connect();
      await other.query('BEGIN');
      await other.query(`SELECT set_config('role', 'app_user', true), set_config('app.current_user_id', $1, true)`, [
        user.userId,
      ]);
      const changed = sealSecrets(
        new Keyring(thirdKey),
        { id: target.id, userId: user.userId, secretsVersion: 1 },
        {
          apiKey: target.apiKey,
          secretKey: 'changed by the server',
        },
      );
      await other.query(
        `UPDATE user_credentials SET api_key_ciphertext = $1, secret_key_ciphertext = $2, key_id = $3, updated_at = now() WHERE id = $4`,
        [changed.apiKeyCiphertext, changed.secretKeyCiphertext, changed.keyId, target.id],
      );
      // ...while the rotation (to thirdKey) reads the old row and blocks on that lock.
      const rotation = rotateCredentialKeys({ db, keyring: new Keyring(thirdKey, [nextKey]), batchSize: 10 });
      try {
        for (let waited = 0; ; waited += 20) {
          const { rows } = await queryDatabase(
            tdb.url as string,
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE user_credentials AS c%'`,
          );
          if (rows[0].n > 0) break;
          if (waited > 10_000) throw new Error('the rotation never reached the locked row');
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        await other.query('COMMIT');
        await other.end();
        await rotation;
      }
      const secrets = await readCredentialSecrets(db, new Keyring(thirdKey), user.userId, target.id);
      expect(secrets.secretKey).toBe('changed by the server');
    },
  );

  it('fails clearly, changing nothing in that batch, when a row needs a key that is not configured', async () => {
    const third = newKey();
    const user = await seedUser(db, new Keyring(third), 3);
    await expect(rotateCredentialKeys({ db, keyring: new Keyring(nextKey), batchSize: 10 })).rejects.toThrow(
      /not configured/,
    );
    expect(new Set(await keyIds(user))).toEqual(new Set([third.id]));
  });
});
