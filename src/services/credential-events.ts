// Writing and reading the audit trail. Always through the caller's scoped db
// (the operation's RLS transaction), so an event is committed with the change
// it records, or rolled back with it.
import type { ScopedDb } from '../db/rls.ts';
import type { ChangeableField, CredentialAction } from '../domain/credential-events.ts';
import type { VerificationStatus } from '../domain/verification-status.ts';
import type { CredentialEvent } from '../generated/prisma/client.ts';

/** Who made the request, as the server saw it (see src/graphql/context.ts). */
export interface RequestOrigin {
  clientIp: string | null;
  userAgent: string | null;
}

export interface CredentialEventInput {
  userId: string;
  credentialId: string;
  action: CredentialAction;
  /** UPDATED, DEACTIVATED, REACTIVATED: the fields that changed; else omitted. */
  changedFields?: readonly ChangeableField[];
  /** VERIFIED only: the outcome stored. */
  verificationStatus?: VerificationStatus;
  request: RequestOrigin;
}

/** Appends one event in `db`'s transaction. */
export async function recordCredentialEvent(db: ScopedDb, event: CredentialEventInput): Promise<void> {
  await db.credentialEvent.create({
    data: {
      userId: event.userId,
      credentialId: event.credentialId,
      action: event.action,
      changedFields: [...(event.changedFields ?? [])],
      verificationStatus: event.verificationStatus ?? null,
      clientIp: event.request.clientIp,
      userAgent: event.request.userAgent,
    },
    select: { id: true },
  });
}

/** A position in the trail: the (occurredAt, id) of the last event a page showed. */
export interface EventPosition {
  occurredAt: Date;
  id: string;
}

/**
 * Up to `limit` of the caller's events, newest first, strictly after `after`
 * in that order: keyset paging on (occurred_at, id), so events that arrive
 * meanwhile (they sort first) never shift a later page. Served by the
 * (user_id | credential_id, occurred_at, id) indexes.
 */
export function listCredentialEvents(
  db: ScopedDb,
  options: { userId: string; credentialId?: string; limit: number; after?: EventPosition },
): Promise<CredentialEvent[]> {
  const { userId, credentialId, limit, after } = options;
  return db.credentialEvent.findMany({
    where: {
      userId,
      ...(credentialId !== undefined ? { credentialId } : {}),
      ...(after
        ? {
            OR: [{ occurredAt: { lt: after.occurredAt } }, { occurredAt: after.occurredAt, id: { lt: after.id } }],
          }
        : {}),
    },
    orderBy: [{ occurredAt: 'desc' }, { id: 'desc' }],
    take: limit,
  });
}
