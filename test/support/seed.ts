// Seeds users with accounts and credentials in-process, through the same
// row builder and RLS wrapper storeCredential uses.
import { randomUUID } from 'node:crypto';
import type { Keyring } from '../../src/crypto/keyring.ts';
import type { Database } from '../../src/db/database.ts';
import { cleanNewCredential } from '../../src/domain/credential.ts';
import { newCredentialRow } from '../../src/services/credential-rows.ts';

export interface SeededUser {
  userId: string;
  accountId: string;
  credentials: { id: string; apiKey: string; secretKey: string }[];
}

export async function seedUser(db: Database, keyring: Keyring, credentials: number): Promise<SeededUser> {
  const userId = `seed-${randomUUID()}`;
  await db.unscopedClient.user.create({ data: { id: userId, email: `${userId}@example.test`, name: 'Seed' } });
  const account = await db.withUser(userId, (tx) => tx.userAccount.create({ data: { userId, accountName: 'Seeded' } }));
  return {
    userId,
    accountId: account.id,
    credentials: await seedCredentials(db, keyring, userId, account.id, credentials),
  };
}

/** Stores `count` credentials with random secrets under an existing account. */
export async function seedCredentials(
  db: Database,
  keyring: Keyring,
  userId: string,
  accountId: string,
  count: number,
): Promise<SeededUser['credentials']> {
  const secrets = Array.from({ length: count }, () => ({
    apiKey: `PK${randomUUID().replaceAll('-', '').slice(0, 18).toUpperCase()}`,
    secretKey: `sk-${randomUUID()}`,
  }));
  const rows = secrets.map((s) =>
    newCredentialRow(keyring, userId, cleanNewCredential({ accountId, credentialType: 'alpaca', ...s })),
  );
  for (let i = 0; i < rows.length; i += 500) {
    await db.withUser(userId, (tx) => tx.credential.createMany({ data: rows.slice(i, i + 500) }));
  }
  return rows.map((row, i) => ({ id: row.id, ...(secrets[i] as { apiKey: string; secretKey: string }) }));
}
