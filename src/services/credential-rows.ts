// The database row of a new credential: validated fields, a fresh id, the
// secrets sealed under the current key (bound to that id and owner), and the
// masked hint. Used by storeCredential and by tools that seed data. The
// columns every reader of secrets selects, and the locked read
// updateCredential starts with.
import { randomUUID } from 'node:crypto';
import { type CredentialIdentity, type SealedSecrets, sealSecrets } from '../crypto/credential-sealing.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { ScopedDb } from '../db/request-transaction.ts';
import { apiKeyHint, type NewCredential } from '../domain/credential.ts';
import type { Prisma } from '../generated/prisma/client.ts';

/**
 * The columns openSecrets needs (its identity and sealed secrets): select
 * them all wherever a credential's secrets are read, e.g.
 * `select: { ...SEALED_SECRETS_SELECT, credentialType: true }`.
 */
export const SEALED_SECRETS_SELECT = {
  id: true,
  userId: true,
  secretsVersion: true,
  keyId: true,
  apiKeyCiphertext: true,
  secretKeyCiphertext: true,
} as const satisfies Prisma.CredentialSelect;

export function newCredentialRow(keyring: Keyring, userId: string, fresh: NewCredential) {
  const id = randomUUID();
  // Written explicitly (the column's default is the same): the ciphertexts are bound to it.
  const secretsVersion = 1;
  return {
    id,
    userId,
    accountId: fresh.accountId,
    credentialType: fresh.credentialType,
    nickname: fresh.nickname,
    apiKeyHint: apiKeyHint(fresh.apiKey),
    secretsVersion,
    ...sealSecrets(keyring, { id, userId, secretsVersion }, fresh),
  };
}

/** What updateCredential needs of the row it changes: identity, sealed secrets, and the values events compare. */
export interface LockedCredential extends SealedSecrets, CredentialIdentity {
  nickname: string | null;
  isActive: boolean;
}

/**
 * Reads one credential and locks it (SELECT ... FOR UPDATE) until the
 * transaction ends; null when absent or not the caller's. Raw SQL because
 * Prisma has no row locks; it runs on the scoped transaction, under RLS.
 */
export async function lockCredentialForUpdate(db: ScopedDb, id: string): Promise<LockedCredential | null> {
  const rows = await db.$queryRaw<LockedCredential[]>`
    SELECT id::text AS "id", user_id AS "userId", nickname, is_active AS "isActive", key_id AS "keyId",
           secrets_version AS "secretsVersion", api_key_ciphertext AS "apiKeyCiphertext",
           secret_key_ciphertext AS "secretKeyCiphertext"
    FROM user_credentials WHERE id = ${id}::uuid FOR UPDATE`;
  return rows[0] ?? null;
}
