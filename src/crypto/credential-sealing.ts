// Sealing a credential's API key and secret key for storage, and opening them.
//
// The associated data names the credential, its owner, the field, the key id
// and the row's secrets_version, so a ciphertext copied into another row,
// another user's row or the other column of the same row fails to open, and
// so does an older ciphertext of the same field put back after new keys were
// stored (updateCredential moves secrets_version on with them).
//
// Versions of a sealed value (its first byte, see cipher.ts):
//   1  before secrets_version was bound in: still opens, so existing data
//      stays readable; `npm run rotate-key` reseals such values as version 2.
//   2  what sealSecrets writes.
import { open, type SealedVersion, seal } from './cipher.ts';
import type { Keyring } from './keyring.ts';

export type SecretField = 'apiKey' | 'secretKey';

/** The row a sealed value belongs to: select id, userId and secretsVersion with the ciphertexts. */
export interface CredentialIdentity {
  id: string;
  userId: string;
  /** The row's secrets_version: the version of its secrets the ciphertexts hold. */
  secretsVersion: number;
}

export interface SealedSecrets {
  keyId: string;
  apiKeyCiphertext: Uint8Array<ArrayBuffer>;
  secretKeyCiphertext: Uint8Array<ArrayBuffer>;
}

export interface Secrets {
  apiKey: string;
  secretKey: string;
}

/** The version sealSecrets writes; rotate-key reseals values of any other. */
export const CURRENT_VERSION: SealedVersion = 2;

function associatedData(version: SealedVersion, who: CredentialIdentity, field: SecretField, keyId: string): Buffer {
  const parts =
    version === 1
      ? ['bca-credential-v1', who.id, who.userId, field, keyId]
      : ['bca-credential-v2', who.id, who.userId, field, keyId, who.secretsVersion];
  return Buffer.from(JSON.stringify(parts), 'utf8');
}

/** Seals both secrets under the keyring's current key, for a row at `who.secretsVersion`. */
export function sealSecrets(keyring: Keyring, who: CredentialIdentity, secrets: Secrets): SealedSecrets {
  const { id: keyId, key } = keyring.current;
  const sealField = (field: SecretField) =>
    new Uint8Array(seal(secrets[field], key, associatedData(CURRENT_VERSION, who, field, keyId), CURRENT_VERSION));
  return { keyId, apiKeyCiphertext: sealField('apiKey'), secretKeyCiphertext: sealField('secretKey') };
}

/** Opens both secrets with the key the row names. */
export function openSecrets(keyring: Keyring, who: CredentialIdentity, sealed: SealedSecrets): Secrets {
  const key = keyring.key(sealed.keyId);
  const openField = (field: SecretField, ciphertext: Uint8Array) =>
    open(ciphertext, key, (version) => associatedData(version, who, field, sealed.keyId));
  return {
    apiKey: openField('apiKey', sealed.apiKeyCiphertext),
    secretKey: openField('secretKey', sealed.secretKeyCiphertext),
  };
}

/**
 * Seals a credential's secrets again under the current key, with `changes`
 * replacing either of them, and returns the secretsVersion the row must be
 * written with: the next one when a secret changes (updateCredential), the
 * same one otherwise (key rotation). Both secrets share one key id and one
 * version, so both are always sealed together; the unchanged one is opened
 * first if needed.
 */
export function resealSecrets(
  keyring: Keyring,
  who: CredentialIdentity,
  sealed: SealedSecrets,
  changes: Partial<Secrets> = {},
): SealedSecrets & { secretsVersion: number } {
  const previous =
    changes.apiKey !== undefined && changes.secretKey !== undefined ? undefined : openSecrets(keyring, who, sealed);
  const changed = changes.apiKey !== undefined || changes.secretKey !== undefined;
  const secretsVersion = changed ? who.secretsVersion + 1 : who.secretsVersion;
  return {
    ...sealSecrets(
      keyring,
      { ...who, secretsVersion },
      {
        apiKey: changes.apiKey ?? (previous as Secrets).apiKey,
        secretKey: changes.secretKey ?? (previous as Secrets).secretKey,
      },
    ),
    secretsVersion,
  };
}
