// The store of engine clients and their access tokens (docs/engines.md):
// clients registered by the operator (`npm run engine-client`), authenticated
// at the token endpoint, and tokens checked on every engine request.
//
// Not user data: the tables engine_clients and engine_tokens have no RLS and
// are reached through the server's own client (Database.unscopedClient),
// like better-auth's sessions. The one change to users' rows here, revoking a
// revoked client's grants, runs in the request transaction scoped to that
// client (src/db/request-transaction.ts).
//
// Secrets: a client secret and an access token are each 256 bits from the
// CSPRNG, stored only as their SHA-256. A slow KDF (scrypt, argon2) exists to
// make guessing a low-entropy password expensive; nobody can enumerate 2^256
// values, so it would buy nothing here and cost its delay on every token
// request. A dump of the database therefore holds nothing that authenticates.
// Tokens are looked up by their hash (an index probe: its timing depends on
// the hash, which a caller cannot steer); a client's secret is compared with
// timingSafeEqual once its row is found by the public client id.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { statement } from '../db/request-transaction.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';

export interface EngineClientInfo {
  id: string;
  name: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface NewEngineClient {
  clientId: string;
  /** Shown once, never stored. */
  clientSecret: string;
  name: string;
}

export interface IssuedToken {
  accessToken: string;
  expiresIn: number;
}

/** The client an access token authenticates, when it is valid now. */
export interface TokenOwner {
  clientId: string;
}

export const CLIENT_NAME_MAX = 100;

// Prefixes let secret scanners (and people) recognise what leaked.
const CLIENT_ID_PREFIX = 'ec_';
const CLIENT_SECRET_PREFIX = 'ecs_';
const TOKEN_PREFIX = 'eat_';

const sha256 = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex');
const random256 = (): string => randomBytes(32).toString('base64url');

/** A client name: trimmed, 1..100 characters, no control characters. Throws a plain Error naming the rule. */
export function cleanClientName(name: string): string {
  const trimmed = name.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (trimmed.length === 0 || [...trimmed].length > CLIENT_NAME_MAX || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw new Error(`NAME must be 1-${CLIENT_NAME_MAX} characters, without control characters`);
  }
  return trimmed;
}

export async function createEngineClient(prisma: PrismaClient, name: string): Promise<NewEngineClient> {
  const clientId = `${CLIENT_ID_PREFIX}${randomBytes(12).toString('base64url')}`;
  const clientSecret = `${CLIENT_SECRET_PREFIX}${random256()}`;
  const clean = cleanClientName(name);
  await prisma.engineClient.create({
    data: { id: clientId, name: clean, secretHash: sha256(clientSecret) },
    select: { id: true },
  });
  return { clientId, clientSecret, name: clean };
}

export function listEngineClients(prisma: PrismaClient): Promise<EngineClientInfo[]> {
  return prisma.engineClient.findMany({
    select: { id: true, name: true, createdAt: true, revokedAt: true },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
  });
}

export interface RevokedEngineClient extends EngineClientInfo {
  /** Its grants revoked by this call (each with ACCESS_REVOKED in its owner's trail). */
  grantsRevoked: number;
}

/**
 * Revokes a client: its tokens are deleted (its next request fails, wherever
 * it is sent: tokens are checked on every call), then every grant it holds is
 * revoked, each with an ACCESS_REVOKED event in its owner's trail (in the
 * client's own scope, which shows exactly its active grants). Idempotent: a
 * second call revokes what the first could not. Null when there is no client
 * with that id.
 */
export async function revokeEngineClient(db: Database, clientId: string): Promise<RevokedEngineClient | null> {
  const select = { id: true, name: true, createdAt: true, revokedAt: true } as const;
  const client = await db.unscopedClient.$transaction(async (tx) => {
    const found = await tx.engineClient.findUnique({ where: { id: clientId }, select });
    if (!found) return null;
    await tx.engineToken.deleteMany({ where: { clientId } });
    if (found.revokedAt) return found;
    return tx.engineClient.update({ where: { id: clientId }, data: { revokedAt: new Date() }, select });
  });
  if (!client) return null;
  const [revoked] = await db.inOneMessage<{ count: number }>(
    { engineClient: clientId },
    statement`SELECT engine_revoke_client_grants() AS "count"`,
  );
  return { ...client, grantsRevoked: revoked?.count ?? 0 };
}

/** Compares two hex digests in constant time. */
function sameDigest(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

// Compared against when the client id is unknown, so that both refusals cost the same.
const NO_CLIENT_HASH = sha256(random256());

/** Whether `clientId` names an unrevoked client whose secret is `clientSecret`. */
export async function authenticateClient(
  prisma: PrismaClient,
  clientId: string,
  clientSecret: string,
): Promise<boolean> {
  const client =
    clientId.length <= 64
      ? await prisma.engineClient.findUnique({ where: { id: clientId }, select: { secretHash: true, revokedAt: true } })
      : null;
  const matches = sameDigest(sha256(clientSecret), client?.secretHash ?? NO_CLIENT_HASH);
  return matches && client !== null && client.revokedAt === null;
}

/**
 * Issues an opaque access token for an authenticated client, valid for
 * `ttlSeconds`. A client holds at most `maxLive` live tokens: issuing one more
 * ends its oldest, and expired ones are deleted on the way, so the table holds
 * a bounded number of rows per client. The client row is locked while this
 * runs, so concurrent requests of one client cannot overshoot the cap.
 */
export async function issueToken(
  prisma: PrismaClient,
  clientId: string,
  options: { ttlSeconds: number; maxLive: number },
): Promise<IssuedToken> {
  const accessToken = `${TOKEN_PREFIX}${random256()}`;
  await prisma.$transaction(async (tx) => {
    const now = new Date();
    // First: this row lock makes the client's issuances take turns.
    await tx.engineClient.update({ where: { id: clientId }, data: { lastTokenAt: now }, select: { id: true } });
    await tx.engineToken.deleteMany({ where: { clientId, expiresAt: { lte: now } } });
    await tx.engineToken.create({
      data: {
        tokenHash: sha256(accessToken),
        clientId,
        createdAt: now,
        expiresAt: new Date(now.getTime() + options.ttlSeconds * 1000),
      },
      select: { tokenHash: true },
    });
    // The live ones beyond the newest maxLive end (newest by creation, then by hash, for a stable order).
    const beyond = await tx.engineToken.findMany({
      where: { clientId },
      orderBy: [{ createdAt: 'desc' }, { tokenHash: 'desc' }],
      skip: options.maxLive,
      select: { tokenHash: true },
    });
    if (beyond.length > 0) {
      await tx.engineToken.deleteMany({ where: { tokenHash: { in: beyond.map((t) => t.tokenHash) } } });
    }
  });
  return { accessToken, expiresIn: options.ttlSeconds };
}

/**
 * The SHA-256 (hex) of a bearer token, by which tokens are stored and looked
 * up; null when the value cannot be one of ours (so it is never hashed or sent).
 */
export function accessTokenHash(accessToken: string): string | null {
  if (!accessToken.startsWith(TOKEN_PREFIX) || accessToken.length > 100) return null;
  return sha256(accessToken);
}

/** The client a bearer token authenticates right now: unexpired, its client unrevoked. Else null. */
export async function checkToken(prisma: PrismaClient, accessToken: string): Promise<TokenOwner | null> {
  const tokenHash = accessTokenHash(accessToken);
  if (!tokenHash) return null;
  const token = await prisma.engineToken.findFirst({
    where: { tokenHash, expiresAt: { gt: new Date() }, client: { revokedAt: null } },
    select: { clientId: true },
  });
  return token ? { clientId: token.clientId } : null;
}
