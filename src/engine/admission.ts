// Admission of a proxied request: how the engine API reaches user data
// knowing only a client (from its token) and a credential id. Step 1 finds
// this client's active grant of the credential in the client's own scope
// (withEngineClient); step 2, in the grant owner's scope (withUser), locks the
// grant, checks the credential and writes the ENGINE_REQUEST event, in one
// transaction that commits before anything is forwarded. No statement here
// uses the unscoped client. Why two scopes, and what a revocation racing a
// request sees: docs/architecture/engine-proxy.md.
import { openSecrets, type SealedSecrets, type Secrets } from '../crypto/credential-sealing.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import type { ScopedDb } from '../db/request-transaction.ts';
import { BROKER_ENVIRONMENTS, type BrokerEnvironment } from '../domain/verification.ts';
import type { RequestOrigin } from '../services/credential-events.ts';

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
  /** "METHOD /template" (src/domain/engine-routes.ts). */
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
