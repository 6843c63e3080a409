// Grant changes: the writes behind GraphQL's grantEngineAccess and
// revokeEngineAccess (src/schema/engine-grant.ts), in the caller's scoped
// transaction (the operation's RLS transaction), each with its audit event,
// so a grant change and its event commit or roll back together.
//
// Replacing a grant: granting a client that already holds an active grant on
// the credential revokes that grant first (revokedAt = now, an
// ACCESS_REVOKED event), then creates the new one (ACCESS_GRANTED): the trail
// says exactly what happened, and the old grant's history stays readable.
// Two grants at once for one credential are serialised by a row lock on the
// credential, so at most one grant per client and credential is ever active.
// A grant that merely expired is left as it is (it is not active, and was not
// revoked).
import type { ScopedDb } from '../db/request-transaction.ts';
import type { GrantTerms } from '../domain/engine-grants.ts';
import { type RequestOrigin, recordCredentialEvent } from '../services/credential-events.ts';

/**
 * Locks the credential (FOR UPDATE, until the transaction ends) and returns
 * its type; null when absent or not the caller's. Raw SQL: Prisma has no row locks.
 */
export async function lockCredentialForGrant(
  db: ScopedDb,
  credentialId: string,
): Promise<{ credentialType: string } | null> {
  const rows = await db.$queryRaw<{ credentialType: string }[]>`
    SELECT credential_type AS "credentialType" FROM user_credentials WHERE id = ${credentialId}::uuid FOR UPDATE`;
  return rows[0] ?? null;
}

/** Whether `clientId` names a registered, unrevoked engine client. */
export async function isActiveEngineClient(db: ScopedDb, clientId: string): Promise<boolean> {
  const client = await db.engineClient.findFirst({ where: { id: clientId, revokedAt: null }, select: { id: true } });
  return client !== null;
}

export interface GrantChange {
  userId: string;
  credentialId: string;
  clientId: string;
  request: RequestOrigin;
}

/**
 * Creates a grant on a credential the caller locked (lockCredentialForGrant),
 * revoking the client's active one first; returns the new grant's id.
 */
export async function grantAccess(db: ScopedDb, change: GrantChange, terms: GrantTerms): Promise<string> {
  const replaced = await db.$queryRaw<{ id: string }[]>`
    UPDATE engine_grants SET revoked_at = now()
     WHERE credential_id = ${change.credentialId}::uuid AND client_id = ${change.clientId}
       AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
    RETURNING id::text AS "id"`;
  for (const _ of replaced) await recordEvent(db, change, 'ACCESS_REVOKED');
  const grant = await db.engineGrant.create({
    data: {
      userId: change.userId,
      credentialId: change.credentialId,
      clientId: change.clientId,
      scopes: terms.scopes,
      expiresAt: terms.expiresAt,
    },
    select: { id: true },
  });
  await recordEvent(db, change, 'ACCESS_GRANTED');
  return grant.id;
}

/**
 * Revokes one grant of the caller's, if it is not revoked already (then
 * nothing changes and no event is written). Returns false when there is no
 * such grant (absent, or someone else's).
 */
export async function revokeAccess(
  db: ScopedDb,
  grantId: string,
  who: { userId: string; request: RequestOrigin },
): Promise<boolean> {
  const revoked = await db.$queryRaw<{ credentialId: string; clientId: string }[]>`
    UPDATE engine_grants SET revoked_at = now() WHERE id = ${grantId}::uuid AND revoked_at IS NULL
    RETURNING credential_id::text AS "credentialId", client_id AS "clientId"`;
  const [row] = revoked;
  if (row) {
    await recordEvent(db, { ...who, ...row }, 'ACCESS_REVOKED');
    return true;
  }
  return (await db.engineGrant.findUnique({ where: { id: grantId }, select: { id: true } })) !== null;
}

function recordEvent(db: ScopedDb, change: GrantChange, action: 'ACCESS_GRANTED' | 'ACCESS_REVOKED') {
  return recordCredentialEvent(db, {
    userId: change.userId,
    credentialId: change.credentialId,
    action,
    engineClientId: change.clientId,
    request: change.request,
  });
}
