// The store of engine clients and their access tokens (docs/engines.md):
// clients registered by the operator (`npm run engine-client`), authenticated
// at the token endpoint, and tokens checked on every engine request.
//
// Not user data: the tables engine_clients and engine_tokens have no RLS and
// are reached through the server's own client (Database.unscopedClient),
// like better-auth's sessions. Nothing here reads or writes a user's rows.
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

/**
 * Revokes a client and deletes its tokens, in one transaction: its next
 * request fails, wherever it is sent (tokens are checked on every call).
 * Returns the client, or null when there is none with that id.
 */
export async function revokeEngineClient(prisma: PrismaClient, clientId: string): Promise<EngineClientInfo | null> {
  const select = { id: true, name: true, createdAt: true, revokedAt: true } as const;
  return prisma.$transaction(async (tx) => {
    const client = await tx.engineClient.findUnique({ where: { id: clientId }, select });
    if (!client) return null;
    await tx.engineToken.deleteMany({ where: { clientId } });
    if (client.revokedAt) return client;
    return tx.engineClient.update({ where: { id: clientId }, data: { revokedAt: new Date() }, select });
  });
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
 * `ttlSeconds`. Expired tokens of that client are deleted on the way, so the
 * table holds a client's live tokens and little else.
 */
export async function issueToken(prisma: PrismaClient, clientId: string, ttlSeconds: number): Promise<IssuedToken> {
  const accessToken = `${TOKEN_PREFIX}${random256()}`;
  const now = Date.now();
  await prisma.engineToken.deleteMany({ where: { clientId, expiresAt: { lte: new Date(now) } } });
  await prisma.engineToken.create({
    data: {
      tokenHash: sha256(accessToken),
      clientId,
      createdAt: new Date(now),
      expiresAt: new Date(now + ttlSeconds * 1000),
    },
    select: { tokenHash: true },
  });
  return { accessToken, expiresIn: ttlSeconds };
}

/** The client a bearer token authenticates right now: unexpired, its client unrevoked. Else null. */
export async function checkToken(prisma: PrismaClient, accessToken: string): Promise<TokenOwner | null> {
  if (!accessToken.startsWith(TOKEN_PREFIX) || accessToken.length > 100) return null;
  const token = await prisma.engineToken.findFirst({
    where: { tokenHash: sha256(accessToken), expiresAt: { gt: new Date() }, client: { revokedAt: null } },
    select: { clientId: true },
  });
  return token ? { clientId: token.clientId } : null;
}
