// GET /engine/v1/grants: the active grants of the calling client, with what
// an engine needs to know of each credential (account, nickname, environment),
// never its keys. The grants come from the client's scope, each credential's
// details from its owner's scope (one short transaction per owner).
import type { Database } from '../db/database.ts';
import { displayNickname } from '../domain/credential.ts';
import { BROKER_ENVIRONMENTS, type BrokerEnvironment } from '../domain/verification.ts';
import type { FoundGrant } from './admission.ts';

/** Most grants GET /engine/v1/grants lists (newest first); `hasMore` says when there are others. */
export const GRANTS_LIST_MAX = 100;

export interface ListedGrant {
  id: string;
  credentialId: string;
  accountId: string;
  nickname: string;
  scopes: string[];
  environment: BrokerEnvironment | null;
  expiresAt: Date | null;
}

/** The client's active grants, newest first, at most GRANTS_LIST_MAX. */
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
