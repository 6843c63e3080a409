// Opens the database the configuration names: PostgreSQL through
// @prisma/adapter-pg with a pool when DATABASE_URL is set, otherwise an
// embedded PGlite persisted in DATA_DIR. Applies pending migrations first.
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import type { Config } from '../config.ts';
import { PrismaClient } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import { applyMigrations, type MigrationConnection, type MigrationResult, readLocalMigrations } from './migrate.ts';
import {
  createWithEngineClient,
  createWithRequestRole,
  createWithUser,
  type RlsOptions,
  readCredentialKeyIds,
  scopeTransactionsOnBegin,
  type WithEngineClient,
  type WithRequestRole,
  type WithUser,
} from './rls.ts';

/** What /ready runs (Database.ping): as the request role, scoped to no one, so no row is read. */
const probeRequests = (withRequestRole: WithRequestRole) =>
  withRequestRole(async (tx) => {
    await tx.$queryRaw`SELECT 1 FROM "user_credentials" LIMIT 1`;
  });

export interface Database {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `work` in a transaction scoped to `userId` (see rls.ts). */
  readonly withUser: WithUser;
  /**
   * Runs `work` in a transaction scoped to an engine client (see rls.ts): it
   * sees that client's active grants and no user's rows. For src/engine only.
   */
  readonly withEngineClient: WithEngineClient;
  /** Runs `work` as the request role scoped to no one (it sees no row): for the start-up checks. */
  readonly withRequestRole: WithRequestRole;
  /** The distinct key ids stored credentials are sealed with, read without opening a row (see rls.ts). */
  credentialKeyIds(): Promise<string[]>;
  /**
   * Resolves when a request could be served: a transaction on the requests'
   * connection, as the request role, reads a user-data table (seeing no row).
   * For /ready: it fails when the role, its grants or that connection do.
   */
  ping(): Promise<void>;
  /** The connections right now, for db_pool_connections (read at each scrape, costs nothing otherwise). */
  connections(): PoolConnections;
  close(): Promise<void>;
  /**
   * The unscoped client, for tables that hold no user data: better-auth's,
   * the shared rate-limit counters, engine clients and tokens. It runs as the
   * connection's login role, outside any user's scope: request code must
   * never use it on user data (a test checks that src/schema does not reach it).
   */
  readonly authTablesClient: PrismaClient;
}

/**
 * PostgreSQL: the pg pools' own counts (active = open - idle; waiting =
 * requests queued for a connection), both pools added up when requests use
 * their own login. PGlite has one backend: active 1 while an RLS transaction
 * holds it (the others wait), else idle 1.
 */
export interface PoolConnections {
  idle: number;
  active: number;
  waiting: number;
}

export interface Instrumentation {
  pgConnection?(client: pg.PoolClient): void;
  pglite?(db: PGlite): void;
}

export interface OpenOptions {
  migrate: boolean;
  logger: Logger;
  /**
   * Called with each new pg connection (before the RLS BEGIN hook wraps it)
   * or with the PGlite instance, once migrations ran: how tests observe what
   * is sent (test/support/statement-counter.ts), and how tracing adds SQL
   * spans on PGlite (src/telemetry/spans.ts).
   */
  instrument?: Instrumentation;
}

// PGlite has one backend: a transaction holds it exclusively and the others
// queue behind it, so waiting is normal there and must not time out early.
const TX_LIMITS = {
  postgres: { maxWaitMs: 10_000, timeoutMs: 15_000 },
  pglite: { maxWaitMs: 60_000, timeoutMs: 15_000 },
};

function pgliteMigrationConnection(db: PGlite): MigrationConnection {
  return {
    query: async <R>(sql: string, params?: unknown[]) => (await db.query<R>(sql, params)).rows,
    exec: async (script) => {
      await db.exec(script);
    },
  };
}

function pgMigrationConnection(client: pg.Client): MigrationConnection {
  return {
    query: async <R>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as R[],
    exec: async (script) => {
      await client.query(script);
    },
  };
}

/** Runs `work` on a migration connection: the open PGlite, or a fresh pg.Client. */
export async function withMigrationConnection<T>(
  config: Config['database'],
  work: (conn: MigrationConnection) => Promise<T>,
  pglite?: PGlite,
): Promise<T> {
  if (config.kind === 'pglite') {
    if (!pglite) throw new Error('migrations on PGlite need the open instance');
    return work(pgliteMigrationConnection(pglite));
  }
  const client = new pg.Client({ connectionString: config.url });
  await client.connect();
  try {
    return await work(pgMigrationConnection(client));
  } finally {
    await client.end();
  }
}

export async function runMigrations(
  config: Config['database'],
  logger: Logger,
  pglite?: PGlite,
): Promise<MigrationResult> {
  const local = await readLocalMigrations();
  const started = Date.now();
  const result = await withMigrationConnection(
    config,
    (conn) => applyMigrations(conn, local, (m) => logger.info(m)),
    pglite,
  );
  logger.info(
    { applied: result.applied.length, alreadyApplied: result.alreadyApplied, ms: Date.now() - started },
    'migrations up to date',
  );
  return result;
}

export async function openDatabase(config: Config['database'], options: OpenOptions): Promise<Database> {
  const { logger } = options;
  if (config.kind === 'pglite') {
    const started = Date.now();
    // PGlite creates its own folder only: DATA_DIR and its parents may not exist yet.
    await mkdir(config.dataDir, { recursive: true });
    const pglite = new PGlite(config.dataDir);
    await pglite.waitReady;
    logger.info({ dataDir: config.dataDir, ms: Date.now() - started }, 'embedded PGlite database open');
    try {
      if (options.migrate) await runMigrations(config, logger, pglite);
    } catch (error) {
      await pglite.close();
      throw error;
    }
    options.instrument?.pglite?.(pglite);
    const client = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
    const rls: RlsOptions = {
      requestRole: config.requestRole,
      scopeOnBegin: false,
      settings: transactionSettings(config),
      ...TX_LIMITS.pglite,
    };
    const withUser = createWithUser(client, rls);
    const withEngineClient = createWithEngineClient(client, rls);
    const withRequestRole = createWithRequestRole(client, rls);
    let inTransaction = 0;
    const counted = async <T>(run: () => Promise<T>): Promise<T> => {
      inTransaction += 1;
      try {
        return await run();
      } finally {
        inTransaction -= 1;
      }
    };
    return {
      kind: 'pglite',
      withUser: (userId, work, commitIf) => counted(() => withUser(userId, work, commitIf)),
      withEngineClient: (clientId, work) => counted(() => withEngineClient(clientId, work)),
      withRequestRole: (work) => counted(() => withRequestRole(work)),
      credentialKeyIds: () => counted(() => readCredentialKeyIds(client)),
      ping: () => counted(() => probeRequests(withRequestRole)),
      connections: () => ({
        idle: inTransaction > 0 ? 0 : 1,
        active: inTransaction > 0 ? 1 : 0,
        waiting: Math.max(0, inTransaction - 1),
      }),
      close: async () => {
        await client.$disconnect();
        await pglite.close();
      },
      authTablesClient: client,
    };
  }

  if (options.migrate) await runMigrations(config, logger);
  const prepared = config.preparedStatements ? statementNames() : undefined;
  const owner = connectPostgres(config.url, config.poolSize, logger, options.instrument, prepared);
  // With DATABASE_REQUEST_URL, request transactions log in as a role that is
  // only a member of the request role: even a statement that ran RESET ROLE
  // could not become the owner. Without it they use the owner's login and
  // SET LOCAL ROLE, which the policies hold to just as well.
  const request = config.requestUrl
    ? connectPostgres(config.requestUrl, config.poolSize, logger, options.instrument, prepared)
    : owner;
  const rls: RlsOptions = {
    requestRole: config.requestRole,
    scopeOnBegin: true,
    settings: transactionSettings(config),
    ...TX_LIMITS.postgres,
  };
  const withRequestRole = createWithRequestRole(request.client, rls);
  return {
    kind: 'postgres',
    withUser: createWithUser(request.client, rls),
    withEngineClient: createWithEngineClient(request.client, rls),
    withRequestRole,
    credentialKeyIds: () => readCredentialKeyIds(owner.client),
    ping: () => probeRequests(withRequestRole),
    connections: () => {
      const pools = owner === request ? [owner.pool] : [owner.pool, request.pool];
      const sum = (count: (pool: pg.Pool) => number) => pools.reduce((total, pool) => total + count(pool), 0);
      const idle = sum((p) => p.idleCount);
      return { idle, active: sum((p) => p.totalCount) - idle, waiting: sum((p) => p.waitingCount) };
    },
    close: async () => {
      await Promise.all([owner, request].map((c) => c.close()));
    },
    authTablesClient: owner.client,
  };
}

const transactionSettings = ({ statementTimeoutMs, maxCredentialsPerAccount }: Config['database']) => ({
  statementTimeoutMs,
  maxCredentialsPerAccount,
});

/** Most distinct statements a connection prepares; any others run unnamed. */
const MAX_PREPARED_STATEMENTS = 200;

/**
 * DATABASE_PREPARED_STATEMENTS: a name per distinct SQL text, so each pool
 * connection parses and plans a statement once and then only binds and runs
 * it (PostgreSQL's CPU per W1 request about halves, see README "Benchmark").
 * The names are bounded: GraphQL selections make many SQL texts, and every
 * connection keeps what it prepared until it closes. Off by default: a
 * transaction-pooling PgBouncer before 1.21 cannot carry named statements.
 */
function statementNames(): (query: { sql: string }) => string | undefined {
  const names = new Map<string, string>();
  return ({ sql }) => {
    let name = names.get(sql);
    if (!name && names.size < MAX_PREPARED_STATEMENTS) {
      name = `bca_${names.size}`;
      names.set(sql, name);
    }
    return name;
  };
}

function connectPostgres(
  url: string,
  poolSize: number,
  logger: Logger,
  instrument?: Instrumentation,
  statementName?: (query: { sql: string }) => string | undefined,
) {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  const observe = instrument?.pgConnection;
  if (observe) pool.on('connect', observe);
  // After the instrumentation hook, so that one sees what is really sent.
  pool.on('connect', scopeTransactionsOnBegin);
  const client = new PrismaClient({
    adapter: new PrismaPg(pool, {
      ...(statementName ? { statementNameGenerator: statementName as (query: { sql: string }) => string } : {}),
      disposeExternalPool: true,
      onPoolError: (err) => logger.warn({ err: err.message }, 'idle database connection failed'),
      onConnectionError: (err) => logger.warn({ err: err.message }, 'database connection failed'),
    }),
  });
  let closing: Promise<void> | undefined;
  return {
    pool,
    client,
    close: () => (closing ??= client.$disconnect().then(() => (pool.ended ? undefined : pool.end()))),
  };
}
