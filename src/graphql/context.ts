// The GraphQL context: what every resolver receives, in one place.
//
// Lifecycle of one request:
//   1. createContext (below) runs once per HTTP request, before parsing: it
//      resolves the session to a viewer and starts with `db` = unscopedDb, a
//      guard that throws on any use.
//   2. The RLS plugin (rls-transaction.ts) wraps execution of an operation
//      that reads data in runInOperationTransaction: one withUser transaction
//      scoped to the viewer, whose transaction client replaces the guard as
//      `db` for every resolver and relation load of that operation.
//   3. The transaction commits when the result has no errors, else rolls back.
// So a resolver's ctx.db is always either the viewer's RLS-scoped transaction
// or a guard; the unscoped client is never reachable from here.
//
// A root field that waits on the network (verifyCredential, which asks the
// broker) opts out of step 2 (see rls-transaction.ts): its operation runs
// with ctx.steps instead, whose `step` runs short withUser transactions of
// its own and whose `openOperationTransaction` opens the operation's
// transaction late, for the field's write and the rest of the operation
// (runWithLateTransaction below). Every statement still runs in withUser.
import type http from 'node:http';
import type { Auth, Viewer } from '../auth/auth.ts';
import { getViewer } from '../auth/auth.ts';
import type { ClientIpResolver } from '../auth/request-headers.ts';
import type { SessionCache } from '../auth/session-cache.ts';
import type { AlpacaClient } from '../brokers/alpaca.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import type { OperationSteps } from '../db/operation-steps.ts';
import type { ScopedDb } from '../db/rls.ts';
import type { VerificationLimiter } from '../services/verification-limiter.ts';

/** What verifyCredential needs besides the database: built once in composition (src/server.ts). */
export interface VerificationDeps {
  alpaca: AlpacaClient;
  limiter: VerificationLimiter;
}

import { eventClientIp, eventUserAgent } from '../domain/credential-events.ts';
import type { RequestOrigin } from '../services/credential-events.ts';

export interface GraphQLContext {
  /** The signed-in user, resolved once per request from the session; null when signed out. */
  viewer: Viewer | null;
  /**
   * The database, already scoped to the viewer: the operation's RLS
   * transaction (see above). Outside such a transaction, any use throws.
   */
  db: ScopedDb;
  /** Seals new secrets with the current key; opens old ones by key id. */
  keyring: Keyring;
  verification: VerificationDeps;
  /** Set only while an operation runs without its transaction (see above); else undefined. */
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
export const unscopedDb = new Proxy({} as ScopedDb, {
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
    db: unscopedDb,
    keyring,
    verification,
    limits,
    origin: {
      clientIp: req ? eventClientIp(clientIp(req)) : null,
      userAgent: eventUserAgent(request.headers.get('user-agent')),
    },
  });
}

/**
 * Runs `execute` inside one transaction scoped to the viewer, with ctx.db set
 * to its client; commits only if `commitIf` accepts the result.
 */
export function runInOperationTransaction<T>(
  database: Database,
  ctx: GraphQLContext,
  viewerId: string,
  execute: () => Promise<T>,
  commitIf: (result: T) => boolean,
): Promise<T> {
  return database.withUser(
    viewerId,
    (tx) => {
      ctx.db = tx;
      return execute();
    },
    commitIf,
  );
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Runs `execute` with no transaction open and ctx.steps set (see above). If a
 * field opens the operation's transaction, execution continues inside it and
 * this resolves once it has committed (or rolled back: `commitIf`), exactly
 * like runInOperationTransaction from that point on.
 */
export async function runWithLateTransaction<T>(
  database: Database,
  ctx: GraphQLContext,
  viewerId: string,
  execute: () => Promise<T>,
  commitIf: (result: T) => boolean,
): Promise<T> {
  let transaction: Promise<T> | undefined;
  let began = false;
  let finish: (outcome: Settled<T>) => void = () => {};
  const ended = new Promise<Settled<T>>((resolve) => {
    finish = resolve;
  });

  ctx.steps = {
    step: (work) => {
      if (transaction) throw new Error('ctx.steps.step used after the operation transaction was opened');
      return database.withUser(viewerId, work);
    },
    openOperationTransaction: () => {
      if (transaction) throw new Error('the operation transaction is already open');
      return new Promise<ScopedDb>((opened, failed) => {
        transaction = database.withUser(
          viewerId,
          async (tx) => {
            began = true;
            ctx.db = tx;
            opened(tx);
            const outcome = await ended;
            if (!outcome.ok) throw outcome.error;
            return outcome.value;
          },
          commitIf,
        );
        // Failing to begin (database down) reaches the field as its error.
        transaction.catch(failed);
      });
    },
  };

  let outcome: Settled<T>;
  try {
    outcome = { ok: true, value: await execute() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  finish(outcome);
  if (transaction && began) return transaction;
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
