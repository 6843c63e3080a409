// AES-256-GCM for secrets at rest (node:crypto).
//
// Layout of a sealed value: version (1 byte) | nonce (12 bytes) | ciphertext | tag (16 bytes).
// Every value gets a fresh random 96-bit nonce. The associated data binds the
// value to where it belongs (see credential-sealing.ts): GCM's tag then fails
// if the bytes are tampered with, moved to another row or field, or opened
// with another key. The version byte says which associated data the value was
// sealed with (the layout is the same for every version): the caller builds
// it for the version it reads, and binds the version into it, so changing the
// byte does not change what a value opens with.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** The versions a sealed value may carry (what each means is the caller's: credential-sealing.ts). */
export const SEALED_VERSIONS = [1, 2] as const;
export type SealedVersion = (typeof SEALED_VERSIONS)[number];

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ALGORITHM = 'aes-256-gcm';

export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

export function seal(plaintext: string, key: Buffer, associatedData: Buffer, version: SealedVersion): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.of(version), nonce, body, cipher.getAuthTag()]);
}

/** The version byte of a sealed value; throws when it is not one we know. */
export function sealedVersion(sealed: Uint8Array): SealedVersion {
  const version = sealed[0] as SealedVersion;
  if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES || !SEALED_VERSIONS.includes(version)) {
    throw new DecryptionError('not a sealed value of a known version');
  }
  return version;
}

/** Opens a sealed value, with the associated data of its version. */
export function open(sealed: Uint8Array, key: Buffer, associatedDataFor: (version: SealedVersion) => Buffer): string {
  const bytes = Buffer.from(sealed);
  const associatedData = associatedDataFor(sealedVersion(bytes));
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
      'ciphertext does not authenticate: it was altered, belongs to another row, field or version of the secrets, or needs another key',
    );
  }
}
