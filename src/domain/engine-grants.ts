// The terms of an engine grant, free of HTTP and the database: the scopes a
// grant may hold, what each permits, whether a grant is in force, and the
// validation of grantEngineAccess's input (docs/engines.md).
import { InvalidInputError } from './errors.ts';

export const ENGINE_SCOPES = ['READ', 'TRADE'] as const;
export type EngineScope = (typeof ENGINE_SCOPES)[number];

/**
 * Most grants of one credential in force at once (one per engine client). It
 * bounds what haltEngineAccess can change and answer: this many per
 * credential, so MAX_CREDENTIALS_PER_ACCOUNT times this many per user.
 */
export const ACTIVE_GRANTS_PER_CREDENTIAL_MAX = 10;

/** Whether a grant's scopes permit a route's: TRADE includes READ. */
export function scopesAllow(granted: readonly string[], needed: EngineScope): boolean {
  return granted.includes(needed) || (needed === 'READ' && granted.includes('TRADE'));
}

/** Whether a grant is in force at `now`: not revoked and not past its expiry. */
export function isGrantActive(grant: { revokedAt: Date | null; expiresAt: Date | null }, now: Date): boolean {
  return grant.revokedAt === null && (grant.expiresAt === null || grant.expiresAt > now);
}

/** A grant as grantEngineAccess stores it. */
export interface GrantTerms {
  scopes: EngineScope[];
  expiresAt: Date | null;
}

/** Validates grantEngineAccess's scopes and expiry; scopes come back once each, in ENGINE_SCOPES order. */
export function cleanGrantTerms(
  input: { scopes: readonly string[]; expiresAt?: Date | null },
  now: Date = new Date(),
): GrantTerms {
  const scopes = ENGINE_SCOPES.filter((s) => input.scopes.includes(s));
  if (scopes.length === 0 || scopes.length !== new Set(input.scopes).size) {
    throw new InvalidInputError('scopes', 'scopes must name at least one of READ, TRADE.');
  }
  const expiresAt = input.expiresAt ?? null;
  if (expiresAt !== null && !(expiresAt.getTime() > now.getTime())) {
    throw new InvalidInputError('expiresAt', 'expiresAt must be in the future (or null: until revoked).');
  }
  return { scopes, expiresAt };
}
