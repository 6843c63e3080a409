// Re-encrypts every credential under the current key, after ENCRYPTION_KEY
// changed and the old key moved to ENCRYPTION_KEYS.
//
// User data stays behind RLS even here: the rotation walks users (from
// better-auth's table) and works on each user's credentials through withUser,
// one batch per transaction. The state lives in the data (a row is done when
// its key id is the current one and its ciphertexts are in the current format,
// see credential-sealing.ts), so an interrupted run loses nothing and a
// second run simply continues. A row the server changes meanwhile is left for
// the next pass rather than overwritten.
import { CURRENT_VERSION, resealSecrets, type SealedSecrets } from '../crypto/credential-sealing.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import { Prisma } from '../generated/prisma/client.ts';

export interface RotationProgress {
  /** Rows re-encrypted so far. */
  done: number;
  /** Rows that needed it when the run started. */
  total: number;
  /** Rows still under an old key at the end (changed while we ran): run again. */
  remaining?: number;
}

export interface RotationOptions {
  db: Database;
  keyring: Keyring;
  batchSize: number;
  onProgress?: (progress: RotationProgress) => void;
}

const USER_PAGE = 1000;

async function* allUserIds(db: Database): AsyncGenerator<string> {
  let cursor: string | undefined;
  for (;;) {
    const page = await db.unscopedClient.user.findMany({
      select: { id: true },
      orderBy: { id: 'asc' },
      take: USER_PAGE,
      ...(cursor ? { cursor: { id: cursor }, skip: 1 } : {}),
    });
    for (const { id } of page) yield id;
    if (page.length < USER_PAGE) return;
    cursor = page.at(-1)?.id;
  }
}

/** A row as the rotation reads it. */
interface StaleRow extends SealedSecrets {
  id: string;
  userId: string;
  secretsVersion: number;
  updatedAt: Date;
}

/**
 * A row needs the rotation when it is sealed under another key than the
 * current one, or in an older format (before secrets_version was bound into
 * the associated data: version byte 1). Raw SQL because Prisma cannot read a
 * byte of a column; it runs on the scoped transaction, under RLS.
 */
const stale = (keyring: Keyring) => Prisma.sql`
  key_id <> ${keyring.current.id}
  OR get_byte(api_key_ciphertext, 0) <> ${CURRENT_VERSION}
  OR get_byte(secret_key_ciphertext, 0) <> ${CURRENT_VERSION}`;

/** Re-encrypts one batch of a user's stale rows; returns how many it changed. */
async function rotateBatch(
  db: Database,
  keyring: Keyring,
  userId: string,
  batchSize: number,
): Promise<{ seen: number; rotated: number }> {
  return db.withUser(userId, async (tx) => {
    const rows = await tx.$queryRaw<StaleRow[]>`
      SELECT id::text AS "id", user_id AS "userId", secrets_version AS "secretsVersion", key_id AS "keyId",
             api_key_ciphertext AS "apiKeyCiphertext", secret_key_ciphertext AS "secretKeyCiphertext",
             updated_at AS "updatedAt"
        FROM user_credentials WHERE ${stale(keyring)}
       ORDER BY id LIMIT ${batchSize}`;
    if (rows.length === 0) return { seen: 0, rotated: 0 };
    // Same secrets, so the same secretsVersion: only the key and the format change.
    const resealed = rows.map((row) => resealSecrets(keyring, row, row));
    // One statement per batch. It touches a row only if nobody changed it
    // since we read it (same key id, secrets version and updatedAt), and
    // leaves updatedAt as it was: a key rotation is not a change of the
    // credential.
    const rotated = await tx.$executeRaw`
      UPDATE user_credentials AS c
      SET api_key_ciphertext = v.api, secret_key_ciphertext = v.secret, key_id = ${keyring.current.id}
      FROM unnest(
        ${rows.map((r) => r.id)}::uuid[],
        ${resealed.map((r) => r.apiKeyCiphertext)}::bytea[],
        ${resealed.map((r) => r.secretKeyCiphertext)}::bytea[],
        ${rows.map((r) => r.keyId)}::text[],
        ${rows.map((r) => r.secretsVersion)}::int[],
        ${rows.map((r) => r.updatedAt)}::timestamptz[]
      ) AS v(id, api, secret, old_key_id, secrets_version, updated_at)
      WHERE c.id = v.id AND c.key_id = v.old_key_id AND c.secrets_version = v.secrets_version
        AND c.updated_at = v.updated_at`;
    return { seen: rows.length, rotated };
  });
}

const countStale = async (db: Database, keyring: Keyring, userId: string) => {
  const [row] = await db.withUser(
    userId,
    (tx) => tx.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM user_credentials WHERE ${stale(keyring)}`,
  );
  return row?.n ?? 0;
};

export async function rotateCredentialKeys({
  db,
  keyring,
  batchSize,
  onProgress,
}: RotationOptions): Promise<RotationProgress> {
  const stale = new Map<string, number>();
  for await (const userId of allUserIds(db)) {
    const n = await countStale(db, keyring, userId);
    if (n > 0) stale.set(userId, n);
  }
  const progress: RotationProgress = { done: 0, total: [...stale.values()].reduce((a, b) => a + b, 0) };
  onProgress?.({ ...progress });
  for (const userId of stale.keys()) {
    for (;;) {
      const { seen, rotated } = await rotateBatch(db, keyring, userId, batchSize);
      progress.done += rotated;
      if (seen > 0) onProgress?.({ ...progress });
      // Done with this user, or only rows changed under us remain (next run).
      if (seen < batchSize || rotated === 0) break;
    }
  }
  let remaining = 0;
  for (const userId of stale.keys()) remaining += await countStale(db, keyring, userId);
  return { ...progress, remaining };
}
