// Writing and reading the audit trail. Always through the caller's scoped db
// (the operation's RLS transaction), so an event is committed with the change
// it records, or rolled back with it.
import type { ScopedDb } from '../db/request-transaction.ts';
import type { ChangedField, CredentialAction } from '../domain/credential-events.ts';
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
  /** UPDATED, DEACTIVATED, REACTIVATED, GUARDRAILS_CHANGED: the fields that changed; else omitted. */
  changedFields?: readonly ChangedField[];
  /** VERIFIED only: the outcome stored. */
  verificationStatus?: VerificationStatus;
  /** ACCESS_GRANTED, ACCESS_REVOKED, GUARDRAILS_CHANGED (and ENGINE_REQUEST, ENGINE_REFUSED, written by src/engine): the engine client. */
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

/** An event as the audit trail lists it: its row, and how Alpaca answered an engine request (null: nothing came back, or not one). */
export type ListedCredentialEvent = CredentialEvent & {
  engineResponse: { status: number; brokerRequestId: string | null } | null;
};

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
): Promise<ListedCredentialEvent[]> {
  const { userId, credentialId, limit, after } = options;
  // Alpaca's answer is a companion row (at most one per event, by its key):
  // joined here, so a page stays one statement.
  const rows = await db.$queryRaw<
    (CredentialEvent & { responseStatus: number | null; brokerRequestId: string | null })[]
  >`
    SELECT e.id::text AS "id", e.user_id AS "userId", e.credential_id::text AS "credentialId", e.action,
           e.changed_fields AS "changedFields", e.verification_status AS "verificationStatus",
           e.occurred_at AS "occurredAt", e.client_ip AS "clientIp", e.user_agent AS "userAgent",
           e.engine_client_id AS "engineClientId", e.engine_request AS "engineRequest",
           e.guardrail_rule AS "guardrailRule", e.engine_order AS "engineOrder",
           r.status AS "responseStatus", r.broker_request_id AS "brokerRequestId"
    FROM credential_events e
    LEFT JOIN engine_responses r ON r.event_id = e.id
    WHERE e.user_id = ${userId}
      ${credentialId !== undefined ? Prisma.sql`AND e.credential_id = ${credentialId}::uuid` : Prisma.empty}
      ${
        after !== undefined
          ? Prisma.sql`AND (e.occurred_at, e.id) < (SELECT occurred_at, id FROM credential_events WHERE id = ${after}::uuid)`
          : Prisma.empty
      }
    ORDER BY e.occurred_at DESC, e.id DESC
    LIMIT ${limit}`;
  const events = rows.map(({ responseStatus, brokerRequestId, ...event }) => ({
    ...event,
    engineResponse: responseStatus === null ? null : { status: responseStatus, brokerRequestId },
  }));
  // Only an empty page can hide an unknown cursor: the comparison with a
  // missing row is never true.
  if (after !== undefined && events.length === 0) {
    const known = await db.credentialEvent.findUnique({ where: { id: after }, select: { id: true } });
    if (!known) throw new InvalidInputError('after', INVALID_CURSOR);
  }
  return events;
}

export const INVALID_CURSOR = 'after must be a cursor from a previous page (an edge cursor or endCursor).';
