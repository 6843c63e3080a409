import { describe, expect, it } from 'vitest';
import { scrub, secretsIn } from '../../src/graphql/secret-scrubbing.ts';

describe('secretsIn', () => {
  it('collects secret-named values from variables, at any depth', () => {
    const found = secretsIn(
      { input: { apiKey: 'PKAAAA1111', secretKey: 's', nickname: 'not secret' }, list: [{ password: 'pw' }] },
      undefined,
    );
    expect(found.sort()).toEqual(['PKAAAA1111', 'pw', 's']);
  });

  it('collects literals of secret-named fields from the document', () => {
    const query =
      'mutation { storeCredential(input: { apiKey: "a\\"b", secretKey: """blk""", nickname: "n", password: 12 }) { id } }';
    expect(secretsIn(undefined, query).sort()).toEqual(['12', 'a"b', 'blk']);
  });
});

describe('scrub', () => {
  it('removes a long secret wherever it appears, raw or JSON-escaped', () => {
    const message = 'got invalid value { apiKey: "PK\\"QUOTE1" } and PK"QUOTE1 again';
    expect(scrub(message, ['PK"QUOTE1'])).toBe('got invalid value { apiKey: "[redacted]" } and [redacted] again');
  });

  it('removes a short secret where GraphQL quotes it, and leaves ordinary words alone', () => {
    const message =
      'Variable "$i" got invalid value { credentialType: "alpaca", apiKey: "k", secretKey: "ab" }; Field "nickname" is not known.';
    expect(scrub(message, ['k', 'ab'])).toBe(
      'Variable "$i" got invalid value { credentialType: "alpaca", apiKey: "[redacted]", secretKey: "[redacted]" }; Field "nickname" is not known.',
    );
  });
});
