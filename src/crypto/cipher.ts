// AES-256-GCM for secrets at rest (node:crypto).
//
// Layout of a sealed value: version (1 byte) | nonce (12 bytes) | ciphertext | tag (16 bytes).
// Every value gets a fresh random 96-bit nonce. The associated data binds the
// value to where it belongs (see credential-sealing.ts): GCM's tag then fails
// if the bytes are tampered with, moved to another row or field, or opened
// with another key.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ALGORITHM = 'aes-256-gcm';

export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

export function seal(plaintext: string, key: Buffer, associatedData: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), nonce, body, cipher.getAuthTag()]);
}

export function open(sealed: Uint8Array, key: Buffer, associatedData: Buffer): string {
  const bytes = Buffer.from(sealed);
  if (bytes.length < 1 + NONCE_BYTES + TAG_BYTES || bytes[0] !== VERSION) {
    throw new DecryptionError('not a sealed value of a known version');
  }
  const nonce = bytes.subarray(1, 1 + NONCE_BYTES);
  const tag = bytes.subarray(bytes.length - TAG_BYTES);
  const body = bytes.subarray(1 + NONCE_BYTES, bytes.length - TAG_BYTES);
  const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(associatedData);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    throw new DecryptionError(
      'ciphertext does not authenticate: it was altered, belongs to another row or field, or needs another key',
    );
  }
}
