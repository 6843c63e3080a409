import { describe, expect, it } from 'vitest';
import {
  accountNameOrDefault,
  cleanAccountChanges,
  cleanAccountName,
  DEFAULT_ACCOUNT_NAME,
} from '../../src/domain/account.ts';
import { InvalidInputError } from '../../src/domain/errors.ts';
import { cleanText } from '../../src/domain/text.ts';

function rejection(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (error) {
    if (error instanceof InvalidInputError) return error;
    throw error;
  }
  throw new Error('expected an InvalidInputError');
}

describe('cleanText', () => {
  const rule = { field: 'name', min: 1, max: 5 };

  it('trims and counts code points, not UTF-16 units', () => {
    expect(cleanText('  abc \n', rule)).toBe('abc');
    expect(cleanText('🙂🙂🙂🙂🙂', rule)).toBe('🙂🙂🙂🙂🙂');
    expect(rejection(() => cleanText('🙂🙂🙂🙂🙂🙂', rule)).message).toMatch(/at most 5 characters \(got 6\)/);
  });

  it('rejects empty, control characters and lone surrogates, naming the field', () => {
    for (const bad of ['', ' \t ', 'a\u0000b', 'a\u001bb', 'a\u0085b', '\ud83d']) {
      expect(rejection(() => cleanText(bad, rule)).field).toBe('name');
    }
  });
});

describe('account rules', () => {
  it('accepts 1..100 characters after trimming', () => {
    expect(cleanAccountName(' x ')).toBe('x');
    expect(cleanAccountName('a'.repeat(100))).toHaveLength(100);
    expect(rejection(() => cleanAccountName('a'.repeat(101))).field).toBe('accountName');
  });

  it('defaults the name only when none is given', () => {
    expect(accountNameOrDefault(undefined)).toBe(DEFAULT_ACCOUNT_NAME);
    expect(accountNameOrDefault(null)).toBe(DEFAULT_ACCOUNT_NAME);
    expect(accountNameOrDefault(' Mine ')).toBe('Mine');
    expect(rejection(() => accountNameOrDefault('  ')).field).toBe('accountName');
  });

  it('keeps fields that are left out or null', () => {
    expect(cleanAccountChanges({})).toEqual({});
    expect(cleanAccountChanges({ accountName: null, isActive: null })).toEqual({});
    expect(cleanAccountChanges({ accountName: ' n ', isActive: false })).toEqual({ accountName: 'n', isActive: false });
  });
});
