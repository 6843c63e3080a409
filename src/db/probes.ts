// What /ready and the start-up checks read, on either database: whether a
// request transaction works at all, and which keys the stored credentials are
// sealed with. Neither opens a row of user data.
import type { PrismaClient } from '../generated/prisma/client.ts';
import type { WithRequestRole } from './request-transaction.ts';

/** What /ready runs (Database.ping): as the request role, scoped to no one, so no row is read. */
export const probeRequests = (withRequestRole: WithRequestRole) =>
  withRequestRole(async (tx) => {
    await tx.$queryRaw`SELECT 1 FROM "user_credentials" LIMIT 1`;
  });

/**
 * The distinct key ids of the stored credentials, read on `ownerClient` as
 * credential_key_reader, a role that may read that one column and nothing
 * else (see the startup_checks migration); the request role is not a member
 * of it and cannot enter it. A loose index scan on user_credentials_key_id_idx:
 * one probe per key id, however many credentials there are (a plain DISTINCT
 * would read the whole index).
 */
export async function readCredentialKeyIds(ownerClient: PrismaClient): Promise<string[]> {
  const rows = await ownerClient.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT set_config('role', 'credential_key_reader', true)`;
    return tx.$queryRaw<{ key_id: string | null }[]>`
      WITH RECURSIVE ids AS (
        SELECT min("key_id") AS key_id FROM "user_credentials"
        UNION ALL
        SELECT (SELECT min("key_id") FROM "user_credentials" WHERE "key_id" > ids.key_id) FROM ids WHERE ids.key_id IS NOT NULL
      )
      SELECT key_id FROM ids WHERE key_id IS NOT NULL`;
  });
  return rows.map((r) => r.key_id as string);
}
