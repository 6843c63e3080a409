import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DecryptionError, open, seal } from '../../src/crypto/cipher.ts';
import { openSecrets, resealSecrets, sealSecrets } from '../../src/crypto/credential-sealing.ts';
import { defaultKeyId, Keyring, UnknownKeyError } from '../../src/crypto/keyring.ts';

const newKey = () => {
  const key = randomBytes(32);
  return { id: defaultKeyId(key), key };
};
const aad = Buffer.from('row-1');
const who = { id: '11111111-1111-4111-8111-111111111111', userId: 'user-a', secretsVersion: 1 };
const aadOf = () => aad;
/** The error `work` throws, or undefined if it returns. */
function thrownBy(work: () => unknown): Error | undefined {
  try {
    work();
  } catch (error) {
    return error as Error;
  }
  return undefined;
}
const secrets = { apiKey: 'PKTESTKEY1234567X7Q2', secretKey: 'secret/with+unicode ☃ and spaces' };

describe('cipher (AES-256-GCM)', () => {
  const { key } = newKey();

  it('round-trips text, including empty and non-ASCII', () => {
    for (const text of ['', 'x', 'ünïcödé ☃ 🙂', 'a'.repeat(10_000)]) {
      expect(open(seal(text, key, aad, 2), key, aadOf)).toBe(text);
    }
  });

  it('uses a fresh nonce for every value', () => {
    const a = seal('same', key, aad, 2);
    const b = seal('same', key, aad, 2);
    expect(a.equals(b)).toBe(false);
    expect(a.subarray(1, 13).equals(b.subarray(1, 13))).toBe(false);
  });

  it('refuses tampered bytes, another key, other associated data, and garbage', () => {
    const sealed = seal('secret', key, aad, 2);
    for (const index of [1, 13, sealed.length - 1]) {
      const tampered = Buffer.from(sealed);
      tampered[index] = (tampered[index] ?? 0) ^ 0x01;
      expect(() => open(tampered, key, aadOf)).toThrow(DecryptionError);
    }
    expect(() => open(sealed, randomBytes(32), aadOf)).toThrow(DecryptionError);
    expect(() => open(sealed, key, () => Buffer.from('row-2'))).toThrow(DecryptionError);
    expect(() => open(Buffer.from('short'), key, aadOf)).toThrow(/known version/);
    expect(() => open(Buffer.concat([Buffer.of(9), sealed.subarray(1)]), key, aadOf)).toThrow(/known version/);
  });

  it('never puts the plaintext into its error messages', () => {
    const sealed = seal('PLAINTEXT-SECRET', key, aad, 2);
    const failures = [
      () => open(sealed, randomBytes(32), aadOf),
      () => open(sealed, key, () => Buffer.from('row-2')),
      () => open(Buffer.concat([Buffer.of(9), sealed.subarray(1)]), key, aadOf),
    ];
    for (const failure of failures) {
      const error = thrownBy(failure);
      // Each must throw: a case that opens (no error) fails here, not silently.
      expect(error).toBeInstanceOf(Error);
      expect(`${error?.message} ${error?.stack}`).not.toContain('PLAINTEXT-SECRET');
    }
  });
});

describe('credential sealing', () => {
  const current = newKey();
  const keyring = new Keyring(current);

  it('seals both secrets under the current key id and opens them', () => {
    const sealed = sealSecrets(keyring, who, secrets);
    expect(sealed.keyId).toBe(current.id);
    expect(Buffer.from(sealed.apiKeyCiphertext).toString('latin1')).not.toContain('PKTESTKEY');
    expect(openSecrets(keyring, who, sealed)).toEqual(secrets);
  });

  it('refuses a ciphertext moved to another row, another owner, or the other field', () => {
    const sealed = sealSecrets(keyring, who, secrets);
    expect(() => openSecrets(keyring, { ...who, id: '22222222-2222-4222-8222-222222222222' }, sealed)).toThrow(
      DecryptionError,
    );
    expect(() => openSecrets(keyring, { ...who, userId: 'user-b' }, sealed)).toThrow(DecryptionError);
    const swapped = {
      ...sealed,
      apiKeyCiphertext: sealed.secretKeyCiphertext,
      secretKeyCiphertext: sealed.apiKeyCiphertext,
    };
    expect(() => openSecrets(keyring, who, swapped)).toThrow(DecryptionError);
  });

  it('refuses an unknown key id, and a known id whose key differs', () => {
    const sealed = sealSecrets(keyring, who, secrets);
    expect(() => openSecrets(keyring, who, { ...sealed, keyId: 'k-unknown' })).toThrow(UnknownKeyError);
    const impostor = new Keyring({ id: current.id, key: randomBytes(32) });
    expect(() => openSecrets(impostor, who, sealed)).toThrow(DecryptionError);
  });

  it('rotates: old rows open with the old key kept in the keyring, and reseal under the new one', () => {
    const old = sealSecrets(keyring, who, secrets);
    const next = newKey();
    const rotated = new Keyring(next, [current]);
    expect(openSecrets(rotated, who, old)).toEqual(secrets);
    const resealed = resealSecrets(rotated, who, old);
    expect(resealed.keyId).toBe(next.id);
    expect(openSecrets(new Keyring(next), who, resealed)).toEqual(secrets);
    expect(() => openSecrets(new Keyring(next), who, old)).toThrow(UnknownKeyError);
  });

  it('reseals with one secret replaced and the other kept, for the next secrets version', () => {
    const sealed = sealSecrets(keyring, who, secrets);
    const changed = resealSecrets(keyring, who, sealed, { apiKey: 'NEWKEY' });
    expect(changed.secretsVersion).toBe(2);
    expect(openSecrets(keyring, { ...who, secretsVersion: 2 }, changed)).toEqual({
      apiKey: 'NEWKEY',
      secretKey: secrets.secretKey,
    });
    expect(resealSecrets(keyring, who, sealed).secretsVersion).toBe(1);
  });

  it('refuses an older ciphertext of the same field once the row is at a later secrets version', () => {
    const first = sealSecrets(keyring, who, secrets);
    const second = resealSecrets(keyring, who, first, { apiKey: 'NEWKEY', secretKey: 'NEWSECRET' });
    const now = { ...who, secretsVersion: second.secretsVersion };
    expect(openSecrets(keyring, now, second)).toEqual({ apiKey: 'NEWKEY', secretKey: 'NEWSECRET' });
    expect(() => openSecrets(keyring, now, first)).toThrow(DecryptionError);
    expect(() => openSecrets(keyring, now, { ...second, apiKeyCiphertext: first.apiKeyCiphertext })).toThrow(
      DecryptionError,
    );
  });

  it('opens values sealed before secrets_version was bound in (version 1), and not a version 2 value relabelled 1', () => {
    // The older format (version 1): version byte 1,
    // associated data without the secrets version.
    const legacyAad = (field: string) =>
      Buffer.from(JSON.stringify(['bca-credential-v1', who.id, who.userId, field, current.id]), 'utf8');
    const legacy = {
      keyId: current.id,
      apiKeyCiphertext: new Uint8Array(seal(secrets.apiKey, current.key, legacyAad('apiKey'), 1)),
      secretKeyCiphertext: new Uint8Array(seal(secrets.secretKey, current.key, legacyAad('secretKey'), 1)),
    };
    expect(openSecrets(keyring, { ...who, secretsVersion: 7 }, legacy)).toEqual(secrets);
    const upgraded = resealSecrets(keyring, who, legacy);
    expect([upgraded.apiKeyCiphertext[0], upgraded.secretKeyCiphertext[0]]).toEqual([2, 2]);
    expect(openSecrets(keyring, who, upgraded)).toEqual(secrets);
    const relabelled = Buffer.from(upgraded.apiKeyCiphertext);
    relabelled[0] = 1;
    expect(() => openSecrets(keyring, who, { ...upgraded, apiKeyCiphertext: new Uint8Array(relabelled) })).toThrow(
      DecryptionError,
    );
  });
});
