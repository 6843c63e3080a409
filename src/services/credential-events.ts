// Writing and reading the audit trail. Always through the caller's scoped db
// (the operation's RLS transaction), so an event is committed with the change
// it records, or rolled back with it.
import type { ScopedDb } from '../db/request-transaction.ts';
import type { ChangeableField, CredentialAction } from '../domain/credential-events.ts';
import { InvalidInputError } from '../domain/errors.ts';
import type { VerificationStatus } from '../domain/verification.ts';
import { type CredentialEvent, Prisma } from '../generated/prisma/client.ts';

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
  /** ACCESS_GRANTED, ACCESS_REVOKED (and ENGINE_REQUEST, written by src/engine): the engine client. */
  engineClientId?: string;
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
      engineClientId: event.engineClientId ?? null,
      clientIp: event.request.clientIp,
      userAgent: event.request.userAgent,
    },
    select: { id: true },
  });
}

/**
 * Up to `limit` of the caller's events, newest first, after the event `after`
 * in that order: keyset paging on (occurred_at, id). The row comparison takes
 * the cursor event's own values inside the database, at full microsecond
 * precision (a JavaScript Date would keep milliseconds), and is a range
 * condition on the (user_id | credential_id, occurred_at, id) indexes, so a
 * deep page costs what the first does. Events that arrive meanwhile sort
 * first: they never shift a later page. Raw SQL because Prisma's cursor
 * option compiles to an OR of comparisons that no index range serves. It runs
 * on the scoped transaction, under RLS.
 *
 * An `after` that names no event the caller can see (made up, or someone
 * else's: the two are not told apart) is refused, naming the argument.
 */
export async function listCredentialEvents(
  db: ScopedDb,
  options: { userId: string; credentialId?: string; limit: number; after?: string },
): Promise<CredentialEvent[]> {
  const { userId, credentialId, limit, after } = options;
  const events = await db.$queryRaw<CredentialEvent[]>`
    SELECT id::text AS "id", user_id AS "userId", credential_id::text AS "credentialId", action,
           changed_fields AS "changedFields", verification_status AS "verificationStatus",
           occurred_at AS "occurredAt", client_ip AS "clientIp", user_agent AS "userAgent",
           engine_client_id AS "engineClientId", engine_request AS "engineRequest"
    FROM credential_events
    WHERE user_id = ${userId}
      ${credentialId !== undefined ? Prisma.sql`AND credential_id = ${credentialId}::uuid` : Prisma.empty}
      ${
        after !== undefined
          ? Prisma.sql`AND (occurred_at, id) < (SELECT occurred_at, id FROM credential_events WHERE id = ${after}::uuid)`
          : Prisma.empty
      }
    ORDER BY occurred_at DESC, id DESC
    LIMIT ${limit}`;
  // Only an empty page can hide an unknown cursor: the comparison with a
  // missing row is never true.
  if (after !== undefined && events.length === 0) {
    const known = await db.credentialEvent.findUnique({ where: { id: after }, select: { id: true } });
    if (!known) throw new InvalidInputError('after', INVALID_CURSOR);
  }
  return events;
}

export const INVALID_CURSOR = 'after must be a cursor from a previous page (an edge cursor or endCursor).';
