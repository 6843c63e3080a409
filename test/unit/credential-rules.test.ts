import { describe, expect, it } from 'vitest';
import {
  apiKeyHint,
  cleanCredentialChanges,
  cleanCredentialType,
  cleanNewCredential,
  cleanNickname,
  displayNickname,
} from '../../src/domain/credential.ts';
import { InvalidInputError } from '../../src/domain/errors.ts';

const fieldOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    if (error instanceof InvalidInputError) return error.field;
    throw error;
  }
  return undefined;
};

describe('credential rules', () => {
  it('accepts credential types of 2-32 lower-case letters, digits and underscores starting with a letter', () => {
    for (const ok of ['alpaca', 'ib', 'alpaca_paper_2', `a${'b'.repeat(31)}`]) expect(cleanCredentialType(ok)).toBe(ok);
    for (const bad of ['', 'a', 'Alpaca', '1alpaca', '_x', 'alp-aca', ' alpaca', `a${'b'.repeat(32)}`, 'ünï']) {
      expect(
        fieldOf(() => cleanCredentialType(bad)),
        bad,
      ).toBe('credentialType');
    }
  });

  it('trims secrets and bounds them to 1..256 characters without control characters', () => {
    const base = { accountId: 'x', credentialType: 'alpaca', apiKey: ' KEY ', secretKey: ' SECRET ' };
    expect(cleanNewCredential(base)).toMatchObject({ apiKey: 'KEY', secretKey: 'SECRET', nickname: null });
    expect(cleanNewCredential({ ...base, apiKey: 'k'.repeat(256) }).apiKey).toHaveLength(256);
    expect(fieldOf(() => cleanNewCredential({ ...base, apiKey: 'k'.repeat(257) }))).toBe('apiKey');
    expect(fieldOf(() => cleanNewCredential({ ...base, apiKey: '   ' }))).toBe('apiKey');
    expect(fieldOf(() => cleanNewCredential({ ...base, secretKey: 'a\nb' }))).toBe('secretKey');
    expect(fieldOf(() => cleanNewCredential({ ...base, secretKey: '' }))).toBe('secretKey');
  });

  it('treats an absent, null, empty or blank nickname as none, and trims the rest', () => {
    for (const none of [undefined, null, '', '   ', '\t\n']) expect(cleanNickname(none)).toBeNull();
    expect(cleanNickname('  Paper 1  ')).toBe('Paper 1');
    expect(cleanNickname(` ${'n'.repeat(100)} `)).toHaveLength(100);
    expect(fieldOf(() => cleanNickname('n'.repeat(101)))).toBe('nickname');
    expect(displayNickname(null, 'alpaca')).toBe('alpaca');
    expect(displayNickname('Paper 1', 'alpaca')).toBe('Paper 1');
  });

  it('keeps what updateCredential leaves out or sets to null, and resets a blank nickname', () => {
    expect(cleanCredentialChanges({})).toEqual({});
    expect(cleanCredentialChanges({ nickname: null, apiKey: null, secretKey: null, isActive: null })).toEqual({});
    expect(cleanCredentialChanges({ nickname: '  ' })).toEqual({ nickname: null });
    expect(cleanCredentialChanges({ apiKey: ' k2 ', isActive: false })).toEqual({ apiKey: 'k2', isActive: false });
  });

  it('shows the last 4 characters of the API key, never more than half of a short one', () => {
    expect(apiKeyHint('PKABCDEFGHIJKLMNX7Q2')).toBe('••••X7Q2');
    expect(apiKeyHint('PKTESTX7Q2')).toBe('••••X7Q2');
    expect(apiKeyHint('12345678')).toBe('••••5678');
    expect(apiKeyHint('123456')).toBe('••••456');
    expect(apiKeyHint('abc')).toBe('••••c');
    expect(apiKeyHint('a')).toBe('••••');
    expect(apiKeyHint('🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂')).toBe('••••🙂🙂🙂🙂');
  });
});
