// PostgreSQL through @prisma/adapter-pg: the pools (the owner's login, and
// the requests' own login when DATABASE_REQUEST_URL is set), the BEGIN-scope
// hook on every pool connection, and the names of prepared statements.
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { Database, DatabaseOptions, Instrumentation, OpenOptions } from './database.ts';
import { runMigrations } from './migrations.ts';
import { probeRequests, readCredentialKeyIds } from './probes.ts';
import {
  createRequestScopes,
  oneMessage,
  requestTransactionOptions,
  type Statement,
  type StatementScope,
  scopeTransactionsOnBegin,
} from './request-transaction.ts';
import { notificationsArrive, type RevocationWatch, watchPostgres } from './session-revocations.ts';

/** How long a request transaction waits for a pool connection, and how long it may last; the scope rides on BEGIN. */
const TX_LIMITS = { maxWaitMs: 10_000, timeoutMs: 15_000, scopeOnBegin: true };

export async function openPostgres(
  config: Extract<DatabaseOptions, { kind: 'postgres' }>,
  options: OpenOptions,
): Promise<Database> {
  const { logger } = options;
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
  const transactions = requestTransactionOptions(config, {
    ...TX_LIMITS,
    // The same names as Prisma's statements get, for statements sent on a transaction's connection directly.
    ...(prepared ? { statementName: (sql: string) => prepared({ sql }) } : {}),
  });
  const scopes = createRequestScopes(request.client, transactions);
  const { withRequestRole } = scopes;
  const listenUrl = config.listenUrl ?? config.url;
  const watches = new Set<RevocationWatch>();
  return {
    kind: 'postgres',
    ...scopes,
    inOneMessage: async <T>(scope: StatementScope, sql: Statement): Promise<T[]> => {
      const text = oneMessage(scope, transactions, sql, pg.escapeLiteral);
      const client = await request.pool.connect();
      try {
        // Two statements in one message: pg answers a result per statement.
        const results = (await client.query(text)) as unknown as pg.QueryResult[];
        return (results.at(-1)?.rows ?? []) as T[];
      } finally {
        client.release();
      }
    },
    credentialKeyIds: () => readCredentialKeyIds(owner.client),
    ping: () => probeRequests(withRequestRole),
    connections: () => {
      const pools = owner === request ? [owner.pool] : [owner.pool, request.pool];
      const sum = (count: (pool: pg.Pool) => number) => pools.reduce((total, pool) => total + count(pool), 0);
      const idle = sum((p) => p.idleCount);
      return { idle, active: sum((p) => p.totalCount) - idle, waiting: sum((p) => p.waitingCount) };
    },
    migrate: () => runMigrations(config, logger),
    watchSessionRevocations: (handlers) => {
      const watch = watchPostgres(listenUrl, logger, handlers);
      watches.add(watch);
      return watch;
    },
    notificationsArrive: (timeoutMs) =>
      notificationsArrive(
        listenUrl,
        async (channel) => {
          await owner.client.$executeRaw`SELECT pg_notify(${channel}, '')`;
        },
        timeoutMs,
      ),
    close: async () => {
      await Promise.all([...watches].map((w) => w.close()));
      await Promise.all([owner, request].map((c) => c.close()));
    },
    unscopedClient: owner.client,
  };
}

/** Most distinct statements a connection prepares; any others run unnamed. */
const MAX_PREPARED_STATEMENTS = 200;

/**
 * DATABASE_PREPARED_STATEMENTS: a name per distinct SQL text, so each pool
 * connection parses and plans a statement once and then only binds and runs
 * it (PostgreSQL's CPU per simple read about halves, see docs/configuration.md).
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
