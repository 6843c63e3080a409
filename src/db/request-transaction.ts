// The request transaction: the only way code reaches user data. GraphQL and
// the engine API both run every user-data statement in one of the scopes
// below, as the request role, in a transaction whose settings are
// transaction-local (nothing outlives it, so a transaction-pooling PgBouncer
// can hand the connection to anyone afterwards).
//
// - withUser: scoped to one user (every GraphQL operation that reads data);
// - withEngineClient: scoped to an engine client, which sees that client's
//   active grants and nothing else (src/engine/admission.ts);
// - withRequestRole: scoped to no one, which sees no row (/ready, start-up);
// - runInOperationTransaction / runWithLateTransaction: one withUser
//   transaction per operation, opened up front or, for a field that waits on
//   the network, only once that field asks for it (OperationSteps);
// - selectText: one SELECT of a text column inside one of those transactions,
//   on its own connection (the GraphQL accounts read, src/graphql/fast-read.ts).
//
// How it works, what it costs and why: docs/architecture/request-transaction.md.
import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';
import type { Prisma, PrismaClient } from '../generated/prisma/client.ts';

/** A database handle already scoped to one user. Resolvers only ever see this. */
export type ScopedDb = Prisma.TransactionClient;

/**
 * What every request transaction is scoped with besides its subject:
 * PostgreSQL's statement_timeout, and the credential cap the database enforces
 * (prisma/migrations/20261202000200_credential_cap).
 */
export interface RequestTransactionSettings {
  statementTimeoutMs: number;
  maxCredentialsPerAccount: number;
}

export interface RequestTransactionOptions {
  /** The NOLOGIN role request traffic runs as (app_user, created by the migrations). */
  requestRole: string;
  /** How long to wait for a connection (pg pool) or the lock (PGlite). */
  maxWaitMs: number;
  /** Upper bound for one transaction; beyond it Prisma rolls back. */
  timeoutMs: number;
  /** The client's pg connections run scopeTransactionsOnBegin (PostgreSQL). */
  scopeOnBegin: boolean;
  /** The prepared-statement name for a SQL text, as the pool's Prisma adapter names it (none: unnamed). */
  statementName?: (sql: string) => string | undefined;
  /** Sent with the scope of every transaction. */
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
  /** The pg connection that BEGIN went out on (PostgreSQL): the transaction's own. */
  connection?: pg.PoolClient;
}

/** The scope of the transaction being opened, for the BEGIN hook below. */
const pendingScope = new AsyncLocalStorage<PendingScope>();

/**
 * Makes a pg connection send the pending scope in the same message as BEGIN,
 * saving a round trip per request. Prisma's pg adapter opens a transaction by
 * sending exactly `BEGIN` on the connection it took from the pool, in the
 * async context of the $transaction call, which is where the scope was put.
 * Everything else passes through untouched; a scoped call refuses to run its
 * work unless the scope was applied.
 */
export function scopeTransactionsOnBegin(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  client.query = ((...args: unknown[]) => {
    const first = args[0] as { text?: unknown } | string | undefined;
    const scope = pendingScope.getStore();
    if (!scope || scope.applied || args.length !== 1 || typeof first !== 'object' || first?.text !== 'BEGIN') {
      return query(...args);
    }
    const sql = `BEGIN; ${scopeStatement(scope.setting, scope.id, scope.role, scope.settings, (text) => client.escapeLiteral(text))}`;
    return query(sql).then(() => {
      scope.applied = true;
      scope.connection = client;
      // What the adapter reads of a BEGIN's result.
      return { command: 'BEGIN', rowCount: 0, rows: [], fields: [] };
    });
  }) as typeof client.query;
}

/**
 * The statement that scopes a transaction: who it is for (the setting and its
 * id), the request role, and the settings every request transaction carries.
 * Sent with BEGIN (above) or ahead of a one-message statement (oneMessage).
 */
function scopeStatement(
  setting: string,
  id: string,
  role: string,
  { statementTimeoutMs, maxCredentialsPerAccount }: RequestTransactionSettings,
  escapeLiteral: (text: string) => string,
): string {
  return (
    `SELECT set_config('${setting}', ${escapeLiteral(id)}, true), ` +
    `set_config('role', ${escapeLiteral(role)}, true), ` +
    `set_config('statement_timeout', ${escapeLiteral(String(statementTimeoutMs))}, true), ` +
    `set_config('app.max_credentials_per_account', ${escapeLiteral(String(maxCredentialsPerAccount))}, true)`
  );
}

/** Runs `work` in a transaction scoped to one user; commits unless `commitIf` refuses the result. */
export type WithUser = <T>(
  userId: string,
  work: (db: ScopedDb) => Promise<T>,
  commitIf?: (result: T) => boolean,
) => Promise<T>;

/** Runs `work` in a transaction scoped to one engine client: it sees that client's active grants only. */
export type WithEngineClient = <T>(clientId: string, work: (db: ScopedDb) => Promise<T>) => Promise<T>;

/** Runs `work` as the request role in a transaction scoped to no one: every policy matches no row. */
export type WithRequestRole = <T>(work: (db: ScopedDb) => Promise<T>) => Promise<T>;

const SCOPE_NAMES: Record<ScopeSetting, string> = {
  'app.current_user_id': 'user',
  'app.current_engine_client_id': 'engine client',
};

function createScoped(client: PrismaClient, options: RequestTransactionOptions, setting: ScopeSetting) {
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
            if (scope.connection) {
              ownConnections.set(tx, { connection: scope.connection, statementName: options.statementName });
            }
            try {
              const result = await work(tx);
              if (!commitIf(result)) throw new Rollback(result);
              return result;
            } finally {
              // Before COMMIT or ROLLBACK: from then on the connection may serve anyone.
              ownConnections.delete(tx);
            }
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

/** The connection of each open scoped transaction on PostgreSQL, by its transaction client, until its work ends. */
const ownConnections = new WeakMap<
  ScopedDb,
  { connection: pg.PoolClient; statementName: RequestTransactionOptions['statementName'] }
>();

const statementTexts = new WeakMap<TemplateStringsArray, string>();

/** A tagged template's SQL with PostgreSQL's $1, $2... placeholders. */
function placeholders(sql: TemplateStringsArray): string {
  let text = statementTexts.get(sql);
  if (text === undefined) {
    text = sql.reduce((joined, part, i) => `${joined}$${i}${part}`);
    statementTexts.set(sql, text);
  }
  return text;
}

/**
 * Runs one SELECT of a single text column in the transaction `db` is the
 * client of, and returns the first row's value (null without a row): for a
 * read that builds its whole answer in SQL (src/graphql/fast-read.ts). On
 * PostgreSQL the statement goes out on the transaction's own connection,
 * after its scope and before its COMMIT, without Prisma's query pipeline,
 * which cost more CPU than the rest of such a read; anywhere else (PGlite),
 * and once the transaction's work has ended, it is db.$queryRaw (which then
 * refuses). No other statement of the transaction may be running meanwhile.
 */
export async function selectText(
  db: ScopedDb,
  sql: TemplateStringsArray,
  ...values: unknown[]
): Promise<string | null> {
  const own = ownConnections.get(db);
  if (!own) {
    const rows = await db.$queryRaw<Record<string, unknown>[]>(sql, ...values);
    const [value] = Object.values(rows[0] ?? {});
    return value == null ? null : String(value);
  }
  const text = placeholders(sql);
  const result = await own.connection.query<unknown[]>({
    name: own.statementName?.(text),
    text,
    values,
    rowMode: 'array',
  });
  const value = result.rows[0]?.[0];
  return value == null ? null : String(value);
}

export function createWithUser(client: PrismaClient, options: RequestTransactionOptions): WithUser {
  const scoped = createScoped(client, options, 'app.current_user_id');
  return async (userId, work, commitIf) => {
    if (!userId) throw new Error('withUser needs a signed-in user id');
    return scoped(userId, work, commitIf);
  };
}

export function createWithEngineClient(client: PrismaClient, options: RequestTransactionOptions): WithEngineClient {
  const scoped = createScoped(client, options, 'app.current_engine_client_id');
  return async (clientId, work) => {
    if (!clientId) throw new Error('withEngineClient needs a client id');
    return scoped(clientId, work);
  };
}

export function createWithRequestRole(client: PrismaClient, options: RequestTransactionOptions): WithRequestRole {
  const scoped = createScoped(client, options, 'app.current_user_id');
  return (work) => scoped('', work);
}

/** The three scopes on one client: what either database hands out (src/db/postgres.ts, src/db/pglite.ts). */
export function createRequestScopes(
  client: PrismaClient,
  options: RequestTransactionOptions,
): { withUser: WithUser; withEngineClient: WithEngineClient; withRequestRole: WithRequestRole } {
  return {
    withUser: createWithUser(client, options),
    withEngineClient: createWithEngineClient(client, options),
    withRequestRole: createWithRequestRole(client, options),
  };
}

/** The scoping of request transactions for a database's options, its limits on waiting and its statement names. */
export function requestTransactionOptions(
  database: { requestRole: string } & RequestTransactionSettings,
  limits: Pick<RequestTransactionOptions, 'maxWaitMs' | 'timeoutMs' | 'scopeOnBegin' | 'statementName'>,
): RequestTransactionOptions {
  const { statementTimeoutMs, maxCredentialsPerAccount } = database;
  return { requestRole: database.requestRole, settings: { statementTimeoutMs, maxCredentialsPerAccount }, ...limits };
}

// ---------------------------------------------------------------------------
// One transaction per operation (a GraphQL operation: src/graphql/rls-transaction.ts
// decides when each variant runs).

/** What a field that runs outside the operation's transaction gets instead. */
export interface OperationSteps {
  /** Runs `work` in a short transaction of its own, scoped to the viewer. Not once the operation's is open. */
  step<T>(work: (db: ScopedDb) => Promise<T>): Promise<T>;
  /**
   * Opens the operation's transaction (once): the holder's `db` becomes it,
   * and the rest of the operation (this field's write, its selection) runs
   * in it. It commits when the operation ends without errors, as usual.
   */
  openOperationTransaction(): Promise<ScopedDb>;
}

/** Where an operation finds its transaction (GraphQL: the context). */
export interface OperationHolder {
  db: ScopedDb;
  steps?: OperationSteps;
}

/**
 * Runs `execute` inside one transaction scoped to `userId`, with holder.db set
 * to its client; commits only if `commitIf` accepts the result.
 */
export function runInOperationTransaction<T>(
  withUser: WithUser,
  holder: OperationHolder,
  userId: string,
  execute: () => Promise<T>,
  commitIf: (result: T) => boolean,
): Promise<T> {
  return withUser(
    userId,
    (tx) => {
      holder.db = tx;
      return execute();
    },
    commitIf,
  );
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Runs `execute` with no transaction open and holder.steps set. If a field
 * opens the operation's transaction, execution continues inside it and this
 * resolves once it has committed (or rolled back: `commitIf`), exactly like
 * runInOperationTransaction from that point on.
 */
export async function runWithLateTransaction<T>(
  withUser: WithUser,
  holder: OperationHolder,
  userId: string,
  execute: () => Promise<T>,
  commitIf: (result: T) => boolean,
): Promise<T> {
  let transaction: Promise<T> | undefined;
  let began = false;
  let finish: (outcome: Settled<T>) => void = () => {};
  const ended = new Promise<Settled<T>>((resolve) => {
    finish = resolve;
  });

  holder.steps = {
    step: (work) => {
      if (transaction) throw new Error('ctx.steps.step used after the operation transaction was opened');
      return withUser(userId, work);
    },
    openOperationTransaction: () => {
      if (transaction) throw new Error('the operation transaction is already open');
      return new Promise<ScopedDb>((opened, failed) => {
        transaction = withUser(
          userId,
          async (tx) => {
            began = true;
            holder.db = tx;
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

// ---------------------------------------------------------------------------
// One statement in one message: for a statement that is a whole transaction
// by itself (the engine API's bookkeeping functions, which move the scope
// themselves), the scope and the statement travel together as one simple
// query, which PostgreSQL runs as one implicit transaction: it commits when
// the statement succeeds and rolls back when it fails, and set_config(...,
// true) lasts exactly until then. One round trip, and no transaction is open
// between two of them (nor across the network while the caller waits).

/** Whom a one-message statement is scoped to: one user, one engine client, or no one. */
export type StatementScope = { user: string } | { engineClient: string } | 'no-one';

/** A statement with its values apart, written with the `statement` tag. */
export interface Statement {
  readonly strings: readonly string[];
  readonly values: readonly StatementValue[];
}

/** A value, inlined as a literal; or a fragment of SQL text the code wrote itself (sqlText), inlined as it is. */
export type StatementValue = string | number | boolean | null | SqlText;

/** SQL text written in the code (a column list), never a value: inlined verbatim. */
export interface SqlText {
  readonly sqlText: string;
}
export const sqlText = (text: string): SqlText => ({ sqlText: text });

/** `statement\`SELECT f(${a}::uuid, ${b})\``: values are inlined as literals when sent (see oneMessage). */
export function statement(strings: TemplateStringsArray, ...values: StatementValue[]): Statement {
  return { strings: [...strings], values };
}

/** Runs one statement scoped to `scope` as one message; resolves with its rows. */
export type InOneMessage = <T>(scope: StatementScope, sql: Statement) => Promise<T[]>;

/**
 * A value as an SQL literal. Strings go through pg's escapeLiteral (the
 * quoting node-postgres itself uses: quotes doubled, an E'' string when there
 * is a backslash); numbers must be finite; nothing else is accepted, so no
 * value can be taken for SQL.
 */
function literal(value: StatementValue, escapeLiteral: (text: string) => string): string {
  if (value === null) return 'NULL';
  if (typeof value === 'object') return value.sqlText;
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('a statement value must be a finite number');
    return String(value);
  }
  return escapeLiteral(value);
}

/**
 * The message: the scope statement, a line break, then the statement. The
 * RLS check of the tests (test/support/rls-check.ts) reads it the same way.
 */
export function oneMessage(
  scope: StatementScope,
  options: Pick<RequestTransactionOptions, 'requestRole' | 'settings'>,
  sql: Statement,
  escapeLiteral: (text: string) => string,
): string {
  const [setting, id] =
    scope === 'no-one'
      ? (['app.current_user_id', ''] as const)
      : 'user' in scope
        ? (['app.current_user_id', scope.user] as const)
        : (['app.current_engine_client_id', scope.engineClient] as const);
  if (scope !== 'no-one' && !id) throw new Error('a scoped statement needs its user or client id');
  const head = `${scopeStatement(setting, id, options.requestRole, options.settings, escapeLiteral)};\n`;
  let body = sql.strings[0] ?? '';
  sql.values.forEach((value, i) => {
    body += literal(value, escapeLiteral) + (sql.strings[i + 1] ?? '');
  });
  return head + body;
}
