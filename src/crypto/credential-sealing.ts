// Sealing a credential's API key and secret key for storage, and opening them.
//
// The associated data names the credential, its owner, the field and the key
// id, so a ciphertext copied into another row, another user's row, or the
// other column of the same row fails to open.
import { open, seal } from './cipher.ts';
import type { Keyring } from './keyring.ts';

export type SecretField = 'apiKey' | 'secretKey';

export interface CredentialIdentity {
  id: string;
  userId: string;
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

function associatedData(who: CredentialIdentity, field: SecretField, keyId: string): Buffer {
  return Buffer.from(JSON.stringify(['bca-credential-v1', who.id, who.userId, field, keyId]), 'utf8');
}

/** Seals both secrets under the keyring's current key. */
export function sealSecrets(keyring: Keyring, who: CredentialIdentity, secrets: Secrets): SealedSecrets {
  const { id: keyId, key } = keyring.current;
  return {
    keyId,
    apiKeyCiphertext: new Uint8Array(seal(secrets.apiKey, key, associatedData(who, 'apiKey', keyId))),
    secretKeyCiphertext: new Uint8Array(seal(secrets.secretKey, key, associatedData(who, 'secretKey', keyId))),
  };
}

/** Opens both secrets with the key the row names. */
export function openSecrets(keyring: Keyring, who: CredentialIdentity, sealed: SealedSecrets): Secrets {
  const key = keyring.key(sealed.keyId);
  return {
    apiKey: open(sealed.apiKeyCiphertext, key, associatedData(who, 'apiKey', sealed.keyId)),
    secretKey: open(sealed.secretKeyCiphertext, key, associatedData(who, 'secretKey', sealed.keyId)),
  };
}

/**
 * Seals a credential's secrets again under the current key, with `changes`
 * replacing either of them. Both secrets share one key id, so both are always
 * sealed together; the unchanged one is opened first if needed.
 */
export function resealSecrets(
  keyring: Keyring,
  who: CredentialIdentity,
  sealed: SealedSecrets,
  changes: Partial<Secrets> = {},
): SealedSecrets {
  const previous =
    changes.apiKey !== undefined && changes.secretKey !== undefined ? undefined : openSecrets(keyring, who, sealed);
  return sealSecrets(keyring, who, {
    apiKey: changes.apiKey ?? (previous as Secrets).apiKey,
    secretKey: changes.secretKey ?? (previous as Secrets).secretKey,
  });
}
