import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { scrub, secretLiterals, secretPositions, secretValues } from '../../src/graphql/secret-scrubbing.ts';
import { schema } from '../../src/schema/index.ts';

const found = (query: string, variables?: Record<string, unknown>) =>
  secretValues(secretPositions(schema, parse(query)), variables).sort();

describe('secret values, by position in the schema', () => {
  it('takes the secret fields of an input variable, at any depth, and nothing else', () => {
    const query = 'mutation($i: StoreCredentialInput!) { storeCredential(input: $i) { id } }';
    const input = { accountId: 'a', credentialType: 'alpaca', apiKey: 'PKAAAA1111', secretKey: 's', nickname: 'n' };
    expect(found(query, { i: input })).toEqual(['PKAAAA1111', 's']);
  });

  it('takes the whole value of a variable used at a secret field, whatever its name or shape', () => {
    const query =
      'mutation($k: String!, $password: String) { storeCredential(input: { accountId: "a", credentialType: "alpaca", apiKey: $k, secretKey: "lit" }) { id } updateCredential(id: "x", input: { nickname: $password }) { id } }';
    expect(found(query, { k: ['PKLIST', { deep: 42 }], password: 'a nickname' })).toEqual(['42', 'PKLIST', 'lit']);
  });

  it('takes values under fields the input does not define, and a value of the wrong shape whole', () => {
    const query = 'mutation($i: StoreCredentialInput!) { storeCredential(input: $i) { id } }';
    expect(found(query, { i: { apiKy: 'PKTYPO', accountId: 'a' } })).toEqual(['PKTYPO']);
    expect(found(query, { i: 'PKWHOLE' })).toEqual(['PKWHOLE']);
    expect(found(query, { i: [{ apiKey: 'PKINLIST' }] })).toEqual(['PKINLIST']);
  });

  it('takes literals at secret fields, printed as GraphQL prints them', () => {
    const query =
      'mutation { storeCredential(input: { accountId: "a", credentialType: "alpaca", apiKey: 1234567, secretKey: """blk""", nickname: "n" }) { id } }';
    expect(found(query)).toEqual(['1234567', 'blk']);
  });

  it('finds nothing to do in a document without secret positions', () => {
    expect(secretPositions(schema, parse('query($id: UUID!) { credential(id: $id) { apiKeyHint } }'))).toEqual({
      literals: [],
      variables: [],
    });
  });
});

describe('secretLiterals (documents that do not parse)', () => {
  it('collects literals written for the given field names', () => {
    const query =
      'mutation { storeCredential(input: { apiKey: "a\\"b", secretKey: """blk""", nickname: "n", other: 12 }) {';
    expect(secretLiterals(query, ['apiKey', 'secretKey']).sort()).toEqual(['a"b', 'blk']);
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
