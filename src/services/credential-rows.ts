// The database row of a new credential: validated fields, a fresh id, the
// secrets sealed under the current key (bound to that id and owner), and the
// masked hint. Used by storeCredential and by tools that seed data.
import { randomUUID } from 'node:crypto';
import { sealSecrets } from '../crypto/credential-sealing.ts';
import type { Keyring } from '../crypto/keyring.ts';
import { apiKeyHint, type NewCredential } from '../domain/credential.ts';

export function newCredentialRow(keyring: Keyring, userId: string, fresh: NewCredential) {
  const id = randomUUID();
  return {
    id,
    userId,
    accountId: fresh.accountId,
    credentialType: fresh.credentialType,
    nickname: fresh.nickname,
    apiKeyHint: apiKeyHint(fresh.apiKey),
    ...sealSecrets(keyring, { id, userId }, fresh),
  };
}
