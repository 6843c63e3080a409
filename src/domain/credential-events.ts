// Rules of the audit trail (docs/audit-trail.md): which event a change to a
// credential leaves, and what an event may say about the request. Events name
// the fields that changed, never their values.
import type { CredentialChanges } from './credential.ts';
import type { GuardrailField } from './guardrails.ts';

export const CREDENTIAL_ACTIONS = [
  'STORED',
  'UPDATED',
  'DEACTIVATED',
  'REACTIVATED',
  'DELETED',
  'VERIFIED',
  // Trading-engine access (docs/engines.md).
  'ACCESS_GRANTED',
  'ACCESS_REVOKED',
  'ENGINE_REQUEST',
  // Guardrails on a grant (docs/engines.md): a change of its limits, and an
  // engine request they refused.
  'GUARDRAILS_CHANGED',
  'ENGINE_REFUSED',
] as const;
export type CredentialAction = (typeof CREDENTIAL_ACTIONS)[number];

/** The fields an update can change, in the order changedFields lists them. */
export const CHANGEABLE_FIELDS = ['nickname', 'apiKey', 'secretKey', 'isActive'] as const;
export type ChangeableField = (typeof CHANGEABLE_FIELDS)[number];

/**
 * What an event's changedFields may name: a credential's fields (UPDATED,
 * DEACTIVATED, REACTIVATED) or a grant's guardrails (GUARDRAILS_CHANGED,
 * GUARDRAIL_FIELDS), never both in one event.
 */
export type ChangedField = ChangeableField | GuardrailField;

export const USER_AGENT_MAX = 256;

/** What an update is about to change, and the event it leaves. */
export interface UpdateEvent {
  action: 'UPDATED' | 'DEACTIVATED' | 'REACTIVATED';
  changedFields: ChangeableField[];
}

/**
 * The event of updateCredential applying `changes` to a credential that now
 * has `current`; null when nothing would change (no event, no write).
 * A new apiKey or secretKey counts as changed even if equal to the old one:
 * it is sealed afresh, and the old value is never compared (or even opened).
 */
export function updateEvent(
  current: { nickname: string | null; isActive: boolean },
  changes: CredentialChanges,
): UpdateEvent | null {
  const changed: Record<ChangeableField, boolean> = {
    nickname: changes.nickname !== undefined && changes.nickname !== current.nickname,
    apiKey: changes.apiKey !== undefined,
    secretKey: changes.secretKey !== undefined,
    isActive: changes.isActive !== undefined && changes.isActive !== current.isActive,
  };
  const changedFields = CHANGEABLE_FIELDS.filter((field) => changed[field]);
  if (changedFields.length === 0) return null;
  const action = !changed.isActive ? 'UPDATED' : changes.isActive ? 'REACTIVATED' : 'DEACTIVATED';
  return { action, changedFields };
}

/**
 * The client address as an event stores it: null when unknown (the resolver
 * says 'unknown' when the socket has no address), and an IPv4 peer of a
 * dual-stack socket (::ffff:a.b.c.d) as the plain a.b.c.d people know.
 */
export function eventClientIp(ip: string): string | null {
  if (ip === 'unknown') return null;
  return /^::ffff:\d{1,3}(\.\d{1,3}){3}$/i.test(ip) ? ip.slice(7) : ip;
}

/** The user agent as an event stores it: at most USER_AGENT_MAX characters; null when absent. */
export function eventUserAgent(header: string | null | undefined): string | null {
  if (!header) return null;
  return [...header].slice(0, USER_AGENT_MAX).join('');
}
