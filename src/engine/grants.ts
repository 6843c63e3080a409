// How the engine API reaches user data: grants found by client, credentials
// read and ENGINE_REQUEST events written as their owner. Every statement runs
// in one of the two RLS scopes of src/db/rls.ts; none uses the unscoped client.
//
// An engine request knows its client (from the token) and a credential id,
// not a user. Finding the user must not open a path to other users' rows:
//
//   1. client scope   withEngineClient(clientId): the transaction sets
//                     app.current_engine_client_id and no user. The one policy
//                     keyed on that setting shows this client's active grants
//                     (not revoked, not expired: the condition is in the
//                     policy itself), SELECT only; every other user table shows
//                     nothing. Here: the grant of this credential to this
//                     client, with its owner's user id and its scopes.
//   2. user scope     withUser(<the grant's user id>): the grant again, with
//                     its credential, as the owner's own rows. Whatever a
//                     client scope returned, a user scope can only ever read
//                     that user's rows, and the credential must be the one
//                     granted (a join on the grant's credential_id and user_id).
//
// So a client sees another client's grant in neither step, a grant of someone
// else's credential cannot exist (composite foreign key), and a bug in the
// caller can at worst read the rows of a user who granted this client access.
//
// Per forwarded request (src/engine/proxy.ts): step 1, then the rate limit,
// then step 2, in which the grant row is locked FOR SHARE, the credential is
// checked, and the ENGINE_REQUEST event is inserted: one transaction (an
// earlier check-only pass cost three round trips, ~23 % of the request's).
// The request is forwarded only once that commits, with no transaction open.
// A revocation (an UPDATE of the grant row) waits for that lock, so every
// request whose event was written before the revocation committed may still
// go out, and no request checked after it does.
import { openSecrets, type SealedSecrets, type Secrets } from '../crypto/credential-sealing.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import type { ScopedDb } from '../db/request-transaction.ts';
import { displayNickname } from '../domain/credential.ts';
import { BROKER_ENVIRONMENTS, type BrokerEnvironment } from '../domain/verification.ts';
import type { RequestOrigin } from '../services/credential-events.ts';

/** Most grants GET /engine/v1/grants lists (newest first); `hasMore` says when there are others. */
export const GRANTS_LIST_MAX = 100;

export interface FoundGrant {
  id: string;
  userId: string;
  scopes: string[];
}

/** Step 1: this client's active grant of `credentialId`, or null (absent, another client's, revoked, expired). */
export function findGrant(db: Database, clientId: string, credentialId: string): Promise<FoundGrant | null> {
  return db.withEngineClient(clientId, async (tx) => {
    const rows = await tx.$queryRaw<FoundGrant[]>`
      SELECT id::text AS "id", user_id AS "userId", scopes
      FROM engine_grants
      WHERE client_id = ${clientId} AND credential_id = ${credentialId}::uuid
        AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
      ORDER BY created_at DESC LIMIT 1`;
    return rows[0] ?? null;
  });
}

interface GrantedCredential extends SealedSecrets {
  id: string;
  userId: string;
  secretsVersion: number;
  isActive: boolean;
  environment: string | null;
}

/** Why a granted credential cannot be used now. */
export type Refusal = 'not-found' | 'inactive' | 'not-verified';

export type Admission =
  | { ok: false; refusal: Refusal }
  | { ok: true; environment: BrokerEnvironment; row: GrantedCredential };

/**
 * Step 2 (in the owner's scope): the grant, still active, and its credential,
 * the grant row locked FOR SHARE until the transaction ends.
 */
async function admit(tx: ScopedDb, grantId: string, credentialId: string): Promise<Admission> {
  const rows = await tx.$queryRaw<GrantedCredential[]>`
    SELECT c.id::text AS "id", c.user_id AS "userId", c.is_active AS "isActive",
           c.verified_environment AS "environment", c.key_id AS "keyId", c.secrets_version AS "secretsVersion",
           c.api_key_ciphertext AS "apiKeyCiphertext", c.secret_key_ciphertext AS "secretKeyCiphertext"
    FROM engine_grants g JOIN user_credentials c ON c.id = g.credential_id AND c.user_id = g.user_id
    WHERE g.id = ${grantId}::uuid AND g.credential_id = ${credentialId}::uuid
      AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > now())
    FOR SHARE OF g`;
  const row = rows[0];
  if (!row) return { ok: false, refusal: 'not-found' };
  if (!row.isActive) return { ok: false, refusal: 'inactive' };
  const environment = BROKER_ENVIRONMENTS.find((e) => e === row.environment);
  if (!environment) return { ok: false, refusal: 'not-verified' };
  return { ok: true, environment, row };
}

export interface EngineRequestRecord {
  clientId: string;
  /** "METHOD /template" (domain/engine.ts). */
  request: string;
  origin: RequestOrigin;
}

/** What may be forwarded, once its event is committed. */
export interface Admitted {
  environment: BrokerEnvironment;
  keys: Secrets;
}

/**
 * Step 2: checks the grant and its credential (the grant row locked), writes the ENGINE_REQUEST event, commits, and only then returns
 * the keys and the environment to forward to. When it cannot be written,
 * nothing is returned to forward.
 */
export async function recordEngineRequest(
  db: Database,
  keyring: Keyring,
  grant: FoundGrant,
  credentialId: string,
  record: EngineRequestRecord,
): Promise<{ ok: false; refusal: Refusal } | ({ ok: true } & Admitted)> {
  const admission = await db.withUser(grant.userId, async (tx) => {
    const found = await admit(tx, grant.id, credentialId);
    if (!found.ok) return found;
    await tx.credentialEvent.create({
      data: {
        userId: found.row.userId,
        credentialId,
        action: 'ENGINE_REQUEST',
        changedFields: [],
        engineClientId: record.clientId,
        engineRequest: record.request,
        clientIp: record.origin.clientIp,
        userAgent: record.origin.userAgent,
      },
      select: { id: true },
    });
    return found;
  });
  if (!admission.ok) return admission;
  return { ok: true, environment: admission.environment, keys: openSecrets(keyring, admission.row, admission.row) };
}

export interface ListedGrant {
  id: string;
  credentialId: string;
  accountId: string;
  nickname: string;
  scopes: string[];
  environment: BrokerEnvironment | null;
  expiresAt: Date | null;
}

/**
 * GET /engine/v1/grants: the client's active grants, newest first, at most
 * GRANTS_LIST_MAX. The grants come from the client scope, each credential's
 * details from its owner's scope (one short transaction per owner).
 */
export async function listClientGrants(
  db: Database,
  clientId: string,
): Promise<{ grants: ListedGrant[]; hasMore: boolean }> {
  const found = await db.withEngineClient(
    clientId,
    (tx) =>
      tx.$queryRaw<(FoundGrant & { credentialId: string; expiresAt: Date | null })[]>`
      SELECT id::text AS "id", user_id AS "userId", credential_id::text AS "credentialId", scopes,
             expires_at AS "expiresAt"
      FROM engine_grants
      WHERE client_id = ${clientId} AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
      ORDER BY created_at DESC, id DESC LIMIT ${GRANTS_LIST_MAX + 1}`,
  );
  const page = found.slice(0, GRANTS_LIST_MAX);
  const byUser = Map.groupBy(page, (g) => g.userId);
  const credentials = new Map<string, { accountId: string; nickname: string; environment: BrokerEnvironment | null }>();
  for (const [userId, grants] of byUser) {
    const rows = await db.withUser(userId, (tx) =>
      tx.credential.findMany({
        where: { id: { in: grants.map((g) => g.credentialId) } },
        select: { id: true, accountId: true, nickname: true, credentialType: true, verifiedEnvironment: true },
      }),
    );
    for (const c of rows) {
      credentials.set(c.id, {
        accountId: c.accountId,
        nickname: displayNickname(c.nickname, c.credentialType),
        environment: BROKER_ENVIRONMENTS.find((e) => e === c.verifiedEnvironment) ?? null,
      });
    }
  }
  const grants = page.flatMap((g) => {
    const credential = credentials.get(g.credentialId);
    return credential
      ? [{ id: g.id, credentialId: g.credentialId, ...credential, scopes: g.scopes, expiresAt: g.expiresAt }]
      : [];
  });
  return { grants, hasMore: found.length > GRANTS_LIST_MAX };
}
