// The GraphQL context: what every resolver receives, in one place. It is
// built once per HTTP request, before parsing: the session resolved to a
// viewer, and `db` a guard that throws on any use until the RLS plugin
// (rls-transaction.ts) puts the operation's transaction there. So a
// resolver's ctx.db is always either the viewer's scoped transaction or the
// guard; the unscoped client is never reachable from here. The request's way
// through: docs/architecture/request-transaction.md.
import type http from 'node:http';
import type { Auth, Viewer } from '../auth/auth.ts';
import { getViewer } from '../auth/auth.ts';
import type { ClientIpResolver } from '../auth/request-headers.ts';
import type { SessionCache } from '../auth/session-cache.ts';
import type { AlpacaClient } from '../brokers/alpaca.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { OperationSteps, ScopedDb } from '../db/request-transaction.ts';
import { eventClientIp, eventUserAgent } from '../domain/credential-events.ts';
import type { RequestOrigin } from '../services/credential-events.ts';
import type { VerificationLimiter } from '../services/verification-limiter.ts';

/** What verifyCredential needs besides the database: built once in composition (src/server.ts). */
export interface VerificationDeps {
  alpaca: AlpacaClient;
  limiter: VerificationLimiter;
}

export interface GraphQLContext {
  /** The signed-in user, resolved once per request from the session; null when signed out. */
  viewer: Viewer | null;
  /**
   * The database, already scoped to the viewer: the operation's RLS
   * transaction. Outside such a transaction, any use throws.
   */
  db: ScopedDb;
  /** Seals new secrets with the current key; opens old ones by key id. */
  keyring: Keyring;
  verification: VerificationDeps;
  /** Set only while an operation runs without its transaction (a field that waits on the network); else undefined. */
  steps?: OperationSteps;
  /** Configured limits that resolvers and complexity estimates read (src/graphql/complexity.ts). */
  limits: RequestLimits;
  /**
   * Where the request came from, for the audit trail: the client IP by the
   * same TRUST_PROXY rules as the sign-in throttle, and the User-Agent header
   * cut to 256 characters. Null when unknown.
   */
  origin: RequestOrigin;
}

export interface RequestLimits {
  /** MAX_CREDENTIALS_PER_ACCOUNT: the length Account.credentials can reach. */
  credentialsPerAccount: number;
}

/** ctx.db before (or without) a transaction: any use is a bug, so it throws. */
export const dbOutsideTransaction = new Proxy({} as ScopedDb, {
  get(_target, property) {
    throw new Error(`ctx.db.${String(property)} used outside the operation's RLS transaction`);
  },
});

export interface ContextDeps {
  auth: Auth;
  sessions: SessionCache;
  keyring: Keyring;
  verification: VerificationDeps;
  clientIp: ClientIpResolver;
  limits: RequestLimits;
}

/** What yoga passes to `context`: the Fetch request, plus node:http's request when served by it. */
export interface ContextInput {
  request: Request;
  req?: http.IncomingMessage;
}

/** Builds the context of one request (yoga's `context` option). */
export function createContextFactory({ auth, sessions, keyring, verification, clientIp, limits }: ContextDeps) {
  return async ({ request, req }: ContextInput): Promise<GraphQLContext> => ({
    viewer: await getViewer(auth, request.headers, sessions),
    db: dbOutsideTransaction,
    keyring,
    verification,
    limits,
    origin: {
      clientIp: req ? eventClientIp(clientIp(req)) : null,
      userAgent: eventUserAgent(request.headers.get('user-agent')),
    },
  });
}
