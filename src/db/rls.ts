// The RLS wrapper: the only way code reaches user data.
//
// withUser opens one interactive transaction, scopes it to the user with ONE
// statement, and hands `work` the transaction client:
//
//   BEGIN
//   SELECT set_config('app.current_user_id', $1, true), set_config('role', $2, true)
//   ...work's statements, as the request role, under the user's policies...
//   COMMIT (or ROLLBACK)
//
// set_config(..., true) is transaction-local (the same as SET LOCAL), and
// set_config('role', ...) is SET LOCAL ROLE with a bindable parameter. Nothing
// outlives the transaction, so a transaction-pooling PgBouncer can hand the
// connection to anyone afterwards.
//
// Cost: 3 round trips per wrapped call on top of work's own statements
// (BEGIN, set_config, COMMIT). The GraphQL layer wraps each operation once
// (not each resolver), so a request pays these 3 once, and every resolver and
// relation load of @pothos/plugin-prisma shares one snapshot and one
// connection.
import type { PrismaClient, Prisma } from '../generated/prisma/client.ts';

/** A database handle already scoped to one user. Resolvers only ever see this. */
export type ScopedDb = Prisma.TransactionClient;

export interface RlsOptions {
  /** The NOLOGIN role request traffic runs as (config DATABASE_REQUEST_ROLE). */
  requestRole: string;
  /** How long to wait for a connection (pg pool) or the lock (PGlite). */
  maxWaitMs: number;
  /** Upper bound for one transaction; beyond it Prisma rolls back. */
  timeoutMs: number;
}

/** Thrown inside the transaction to roll it back while still returning a value. */
class Rollback<T> extends Error {
  constructor(readonly result: T) {
    super('rollback');
  }
}

export type WithUser = <T>(
  userId: string,
  work: (db: ScopedDb) => Promise<T>,
  commitIf?: (result: T) => boolean,
) => Promise<T>;

export function createWithUser(client: PrismaClient, options: RlsOptions): WithUser {
  return async function withUser<T>(
    userId: string,
    work: (db: ScopedDb) => Promise<T>,
    commitIf: (result: T) => boolean = () => true,
  ): Promise<T> {
    if (!userId) throw new Error('withUser needs a signed-in user id');
    try {
      return await client.$transaction(
        async (tx) => {
          await tx.$executeRaw`SELECT set_config('app.current_user_id', ${userId}, true), set_config('role', ${options.requestRole}, true)`;
          const result = await work(tx);
          if (!commitIf(result)) throw new Rollback(result);
          return result;
        },
        { maxWait: options.maxWaitMs, timeout: options.timeoutMs },
      );
    } catch (error) {
      if (error instanceof Rollback) return error.result as T;
      throw error;
    }
  };
}
