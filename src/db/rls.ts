// The RLS wrapper: the only way code reaches user data.
//
// withUser opens one interactive transaction, scopes it to the user, and
// hands `work` the transaction client:
//
//   BEGIN; SELECT set_config('app.current_user_id', '<user>', true), set_config('role', 'app_user', true),
//          set_config('statement_timeout', '5000', true), set_config('app.max_credentials_per_account', '100', true)
//   ...work's statements, as the request role, under the user's policies...
//   COMMIT (or ROLLBACK)
//
// set_config(..., true) is transaction-local (the same as SET LOCAL), and
// set_config('role', ...) is SET LOCAL ROLE. statement_timeout bounds every
// statement of the request (PostgreSQL cancels one that runs longer; PGlite
// ignores it: it runs in this process and cannot be interrupted), and
// app.max_credentials_per_account is the cap the credential trigger compares
// with (migration 20261202000200_credential_cap). Nothing outlives the
// transaction, so a transaction-pooling PgBouncer can hand the connection to
// anyone afterwards.
//
// Cost on PostgreSQL: 2 round trips per wrapped call on top of work's own
// statements: the scope rides in the same simple-protocol message as BEGIN
// (see scopeTransactionsOnBegin), then COMMIT. On PGlite (in-process, no round
// trips) the scope is a separate statement after BEGIN. The GraphQL layer
// wraps each operation once (not each resolver), so a request pays this
// once, and every resolver and relation load of @pothos/plugin-prisma shares
// one snapshot and one connection. Prisma runs a transaction's operations one
// at a time, so sibling resolvers never overlap on the connection.
//
// A second kind of scope, for the trading-engine API (contract section 11):
// withEngineClient sets app.current_engine_client_id instead of a user,
// under the same role:
//
//   BEGIN; SELECT set_config('app.current_engine_client_id', '<client>', true), set_config('role', 'app_user', true)
//
// No user is set, so every user-data policy matches nothing; the one policy
// keyed on that setting lets it SELECT the client's active rows of
// engine_grants, and nothing else (see the engine_access migration).
//
// Two more, for the start-up checks and /ready (src/startup): withRequestRole
// scopes a transaction to no one (app.current_user_id ''), which sees no row
// at all; readCredentialKeyIds reads the distinct key ids of the stored
// credentials as credential_key_reader, a role that may read that one column
// and nothing else (see the startup_checks migration). It runs on the owner's
// client: the request role is not a member of that role and cannot enter it.
import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';
import type { RequestTransactionSettings } from '../config.ts';
import type { Prisma, PrismaClient } from '../generated/prisma/client.ts';

/** A database handle already scoped to one user. Resolvers only ever see this. */
export type ScopedDb = Prisma.TransactionClient;

export interface RlsOptions {
  /** The NOLOGIN role request traffic runs as (config DATABASE_REQUEST_ROLE). */
  requestRole: string;
  /** How long to wait for a connection (pg pool) or the lock (PGlite). */
  maxWaitMs: number;
  /** Upper bound for one transaction; beyond it Prisma rolls back. */
  timeoutMs: number;
  /** The client's pg connections run scopeTransactionsOnBegin (PostgreSQL). */
  scopeOnBegin: boolean;
  /** Sent with the scope of every transaction (see the top of this file). */
  settings: RequestTransactionSettings;
}

/** Thrown inside the transaction to roll it back while still returning a value. */
class Rollback<T> extends Error {
  readonly result: T;
  constructor(result: T) {
    super('rollback');
    this.result = result;
  }
}

/** The setting a scope names: a user (every request), or an engine client (src/engine). */
type ScopeSetting = 'app.current_user_id' | 'app.current_engine_client_id';

interface PendingScope {
  setting: ScopeSetting;
  id: string;
  role: string;
  settings: RequestTransactionSettings;
  /** Set once the scope was sent with this transaction's BEGIN. */
  applied: boolean;
}

/** The scope of the transaction withUser is opening, for the BEGIN hook below. */
const pendingScope = new AsyncLocalStorage<PendingScope>();

/**
 * Makes a pg connection send the pending user scope in the same message as
 * BEGIN, saving a round trip per request. Prisma's pg adapter opens a
 * transaction by sending exactly `BEGIN` on the connection it took from the
 * pool, in the async context of the $transaction call, which is where
 * withUser put the scope. Everything else passes through untouched; withUser
 * refuses to run work unless the scope was applied.
 */
export function scopeTransactionsOnBegin(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  client.query = ((...args: unknown[]) => {
    const first = args[0] as { text?: unknown } | string | undefined;
    const scope = pendingScope.getStore();
    if (!scope || scope.applied || args.length !== 1 || typeof first !== 'object' || first?.text !== 'BEGIN') {
      return query(...args);
    }
    const { statementTimeoutMs, maxCredentialsPerAccount } = scope.settings;
    const sql =
      `BEGIN; SELECT set_config('${scope.setting}', ${client.escapeLiteral(scope.id)}, true), ` +
      `set_config('role', ${client.escapeLiteral(scope.role)}, true), ` +
      `set_config('statement_timeout', ${client.escapeLiteral(String(statementTimeoutMs))}, true), ` +
      `set_config('app.max_credentials_per_account', ${client.escapeLiteral(String(maxCredentialsPerAccount))}, true)`;
    return query(sql).then(() => {
      scope.applied = true;
      // What the adapter reads of a BEGIN's result.
      return { command: 'BEGIN', rowCount: 0, rows: [], fields: [] };
    });
  }) as typeof client.query;
}

export type WithUser = <T>(
  userId: string,
  work: (db: ScopedDb) => Promise<T>,
  commitIf?: (result: T) => boolean,
) => Promise<T>;

/** Runs `work` in a transaction scoped to one engine client (see the top of this file). */
export type WithEngineClient = <T>(clientId: string, work: (db: ScopedDb) => Promise<T>) => Promise<T>;

const SCOPE_NAMES: Record<ScopeSetting, string> = {
  'app.current_user_id': 'user',
  'app.current_engine_client_id': 'engine client',
};

function createScoped(client: PrismaClient, options: RlsOptions, setting: ScopeSetting) {
  return async function scoped<T>(
    id: string,
    work: (db: ScopedDb) => Promise<T>,
    commitIf: (result: T) => boolean = () => true,
  ): Promise<T> {
    const { settings } = options;
    const scope: PendingScope = { setting, id, role: options.requestRole, settings, applied: false };
    const timeout = String(settings.statementTimeoutMs);
    const cap = String(settings.maxCredentialsPerAccount);
    try {
      return await pendingScope.run(scope, () =>
        client.$transaction(
          async (tx) => {
            if (options.scopeOnBegin) {
              if (!scope.applied) throw new Error(`the transaction began without its ${SCOPE_NAMES[setting]} scope`);
            } else if (setting === 'app.current_user_id') {
              await tx.$executeRaw`SELECT set_config('app.current_user_id', ${id}, true), set_config('role', ${options.requestRole}, true), set_config('statement_timeout', ${timeout}, true), set_config('app.max_credentials_per_account', ${cap}, true)`;
            } else {
              await tx.$executeRaw`SELECT set_config('app.current_engine_client_id', ${id}, true), set_config('role', ${options.requestRole}, true), set_config('statement_timeout', ${timeout}, true), set_config('app.max_credentials_per_account', ${cap}, true)`;
            }
            const result = await work(tx);
            if (!commitIf(result)) throw new Rollback(result);
            return result;
          },
          { maxWait: options.maxWaitMs, timeout: options.timeoutMs },
        ),
      );
    } catch (error) {
      if (error instanceof Rollback) return error.result as T;
      throw error;
    }
  };
}

export function createWithUser(client: PrismaClient, options: RlsOptions): WithUser {
  const scoped = createScoped(client, options, 'app.current_user_id');
  return async (userId, work, commitIf) => {
    if (!userId) throw new Error('withUser needs a signed-in user id');
    return scoped(userId, work, commitIf);
  };
}

/** Runs `work` as the request role in a transaction scoped to no one: every policy matches no row. */
export type WithRequestRole = <T>(work: (db: ScopedDb) => Promise<T>) => Promise<T>;

export function createWithRequestRole(client: PrismaClient, options: RlsOptions): WithRequestRole {
  const scoped = createScoped(client, options, 'app.current_user_id');
  return (work) => scoped('', work);
}

/**
 * The distinct key ids of the stored credentials, read as
 * credential_key_reader on `ownerClient` (see the top of this file). A loose
 * index scan on user_credentials_key_id_idx: one probe per key id, however
 * many credentials there are (a plain DISTINCT would read the whole index).
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

export function createWithEngineClient(client: PrismaClient, options: RlsOptions): WithEngineClient {
  const scoped = createScoped(client, options, 'app.current_engine_client_id');
  return async (clientId, work) => {
    if (!clientId) throw new Error('withEngineClient needs a client id');
    return scoped(clientId, work);
  };
}
