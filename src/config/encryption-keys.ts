// ENCRYPTION_KEY, ENCRYPTION_KEY_ID and ENCRYPTION_KEYS: the key new secrets
// are sealed with, and the older keys that still open what they sealed.
import { z } from 'zod';
import { decodesTo32Bytes, type EncryptionKey } from '../crypto/keyring.ts';

export const base64Key = z.string().refine((v) => decodesTo32Bytes(v), {
  message: 'must be the base64 encoding of exactly 32 bytes (generate one with: openssl rand -base64 32)',
});

/**
 * The older keys of ENCRYPTION_KEYS. A ciphertext names its key by id, so an
 * id must mean one key: an entry giving the current key's id (or another
 * entry's) a different key is refused, since data sealed under one of the two
 * would not open. The very same key again is accepted and dropped: listing
 * every key, the current one included, keeps one list for all servers during
 * a rotation. Messages name entries and ids, never keys.
 */
export function olderKeys(current: EncryptionKey, listed: EncryptionKey[]): EncryptionKey[] {
  const byId = new Map<string, { key: Buffer; name: string }>([
    [current.id, { key: current.key, name: 'ENCRYPTION_KEY' }],
  ]);
  const older: EncryptionKey[] = [];
  listed.forEach((entry, i) => {
    const known = byId.get(entry.id);
    if (!known) {
      byId.set(entry.id, { key: entry.key, name: `entry ${i + 1}` });
      older.push(entry);
    } else if (!known.key.equals(entry.key)) {
      throw new Error(
        `entry ${i + 1} has the id "${entry.id}" of ${known.name} but another key: ciphertexts name their key ` +
          'by id, so give it an id of its own (id:base64key)',
      );
    }
  });
  return older;
}
