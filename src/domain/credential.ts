// Rules for brokerage credentials: what may be stored, how nicknames default,
// and what of the API key may be shown.
import { InvalidInputError } from './errors.ts';
import { cleanText } from './text.ts';

export const CREDENTIAL_TYPE = /^[a-z][a-z0-9_]{1,31}$/;
export const SECRET_MAX = 256;
export const NICKNAME_MAX = 100;
const MASK = '••••';

export function cleanCredentialType(value: string): string {
  if (!CREDENTIAL_TYPE.test(value)) {
    throw new InvalidInputError(
      'credentialType',
      'credentialType must be 2-32 lower-case letters, digits or underscores, starting with a letter (e.g. "alpaca").',
    );
  }
  return value;
}

export function cleanSecret(field: 'apiKey' | 'secretKey', value: string): string {
  return cleanText(value, { field, min: 1, max: SECRET_MAX });
}

/**
 * The nickname to store: trimmed, or null ("no nickname", shown as the
 * credential type) when absent, null, empty or only whitespace.
 */
export function cleanNickname(value: string | null | undefined): string | null {
  if (value == null || value.trim() === '') return null;
  return cleanText(value, { field: 'nickname', min: 1, max: NICKNAME_MAX });
}

/** What the API shows as nickname. */
export function displayNickname(stored: string | null, credentialType: string): string {
  return stored ?? credentialType;
}

/**
 * The masked API key: a fixed mask (so the length is not revealed) and the
 * last 4 characters, fewer for keys shorter than 8 so that at most half of a
 * key is ever shown.
 */
export function apiKeyHint(apiKey: string): string {
  const chars = [...apiKey];
  const visible = Math.min(4, Math.floor(chars.length / 2));
  return MASK + chars.slice(chars.length - visible).join('');
}

export interface NewCredential {
  accountId: string;
  credentialType: string;
  apiKey: string;
  secretKey: string;
  nickname: string | null;
}

export function cleanNewCredential(input: {
  accountId: string;
  credentialType: string;
  apiKey: string;
  secretKey: string;
  nickname?: string | null;
}): NewCredential {
  return {
    accountId: input.accountId,
    credentialType: cleanCredentialType(input.credentialType),
    apiKey: cleanSecret('apiKey', input.apiKey),
    secretKey: cleanSecret('secretKey', input.secretKey),
    nickname: cleanNickname(input.nickname),
  };
}

export interface CredentialChanges {
  /** null resets to "no nickname"; undefined keeps it. */
  nickname?: string | null;
  apiKey?: string;
  secretKey?: string;
  isActive?: boolean;
}

/** updateCredential's input: a field left out or null stays as it is; nickname "" resets it. */
export function cleanCredentialChanges(input: {
  nickname?: string | null;
  apiKey?: string | null;
  secretKey?: string | null;
  isActive?: boolean | null;
}): CredentialChanges {
  const changes: CredentialChanges = {};
  if (input.nickname != null) changes.nickname = cleanNickname(input.nickname);
  if (input.apiKey != null) changes.apiKey = cleanSecret('apiKey', input.apiKey);
  if (input.secretKey != null) changes.secretKey = cleanSecret('secretKey', input.secretKey);
  if (input.isActive != null) changes.isActive = input.isActive;
  return changes;
}
