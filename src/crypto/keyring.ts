// The encryption keys: the current one seals, any known one opens. Also how
// keys are written in the configuration (ENCRYPTION_KEY, ENCRYPTION_KEYS).
import { createHash } from 'node:crypto';

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

/** What a key id may look like (ENCRYPTION_KEY_ID, or the id: prefix in ENCRYPTION_KEYS). */
export const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;

export function decodesTo32Bytes(value: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) return false;
  return Buffer.from(value, 'base64').length === 32;
}

/**
 * The id stored beside each ciphertext when ENCRYPTION_KEY_ID is not given:
 * derived from the key (first 8 bytes of its SHA-256), so the same key always
 * gets the same id and nobody has to name keys. It reveals nothing usable.
 */
export function defaultKeyId(key: Buffer): string {
  return `k-${createHash('sha256').update(key).digest().subarray(0, 8).toString('hex')}`;
}

/**
 * ENCRYPTION_KEYS holds older keys after a rotation, comma-separated, each
 * `base64key` (its id derived as for ENCRYPTION_KEY) or `id:base64key`.
 * Throws an Error whose message says which entry is wrong (never the key).
 */
export function parseKeyList(value: string | undefined): EncryptionKey[] {
  if (!value) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry, i) => {
      const sep = entry.indexOf(':');
      const b64 = sep >= 0 ? entry.slice(sep + 1) : entry;
      if (!decodesTo32Bytes(b64) || (sep >= 0 && !KEY_ID.test(entry.slice(0, sep)))) {
        throw new Error(
          `entry ${i + 1} must be base64key or id:base64key, where the key is the base64 of exactly 32 bytes ` +
            'and the id 1-64 letters, digits, dots, dashes or underscores',
        );
      }
      const key = Buffer.from(b64, 'base64');
      return { id: sep >= 0 ? entry.slice(0, sep) : defaultKeyId(key), key };
    });
}

export class UnknownKeyError extends Error {
  override name = 'UnknownKeyError';
  readonly keyId: string;
  constructor(keyId: string) {
    super(`encryption key "${keyId}" is not configured (add it to ENCRYPTION_KEYS to read data sealed with it)`);
    this.keyId = keyId;
  }
}

export class Keyring {
  readonly current: EncryptionKey;
  readonly #byId: Map<string, Buffer>;

  constructor(current: EncryptionKey, previous: EncryptionKey[] = []) {
    this.current = current;
    this.#byId = new Map([...previous.map((k) => [k.id, k.key] as const), [current.id, current.key]]);
  }

  key(id: string): Buffer {
    const key = this.#byId.get(id);
    if (!key) throw new UnknownKeyError(id);
    return key;
  }
}
