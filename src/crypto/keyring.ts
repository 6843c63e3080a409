// The encryption keys: the current one seals, any known one opens.
import type { EncryptionKey } from '../config.ts';

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
