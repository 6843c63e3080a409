// Rules for trading accounts (one per user, for now).
import { InvalidInputError } from './errors.ts';
import { cleanText } from './text.ts';

export const DEFAULT_ACCOUNT_NAME = 'Default Alpaca Account';
export const ACCOUNT_NAME_MAX = 100;

export function cleanAccountName(value: string): string {
  return cleanText(value, { field: 'accountName', min: 1, max: ACCOUNT_NAME_MAX });
}

export interface AccountChanges {
  accountName?: string;
  isActive?: boolean;
}

/** updateAccount's input: a field left out or null stays as it is. */
export function cleanAccountChanges(input: { accountName?: string | null; isActive?: boolean | null }): AccountChanges {
  const changes: AccountChanges = {};
  if (input.accountName != null) changes.accountName = cleanAccountName(input.accountName);
  if (input.isActive != null) changes.isActive = input.isActive;
  return changes;
}

/** getOrCreateAccount's name: the given one, or the default when none is given. */
export function accountNameOrDefault(value: string | null | undefined): string {
  if (value == null) return DEFAULT_ACCOUNT_NAME;
  if (value.trim() === '') {
    throw new InvalidInputError('accountName', 'accountName must not be empty (leave it out for the default name).');
  }
  return cleanAccountName(value);
}
