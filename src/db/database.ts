// The database the configuration names: PostgreSQL (src/db/postgres.ts) when
// DATABASE_URL is set, otherwise an embedded PGlite persisted in DATA_DIR
// (src/db/pglite.ts). Either applies pending migrations first when asked
// (src/db/migrations.ts), and hands out the request transaction's scopes
// (src/db/request-transaction.ts).
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import type { PrismaClient } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { MigrationResult } from './migrations.ts';
import { openPglite } from './pglite.ts';
import { openPostgres } from './postgres.ts';
import type {
  InOneMessage,
  RequestTransactionSettings,
  WithEngineClient,
  WithRequestRole,
  WithUser,
} from './request-transaction.ts';
import type { RevocationHandlers, RevocationWatch } from './session-revocations.ts';

/** Which database to open, and how request transactions are scoped on it (src/config produces it). */
export type DatabaseOptions = (
  | {
      kind: 'postgres';
      url: string;
      /** A separate login for request traffic (a role that is only a member of the request role). */
      requestUrl?: string;
      /** A direct, session-capable connection for LISTEN (default: url); not through a transaction pooler. */
      listenUrl?: string;
      poolSize: number;
      requestRole: string;
      /** Named prepared statements (src/db/postgres.ts); not through PgBouncer before 1.21. */
      preparedStatements?: boolean;
    }
  | { kind: 'pglite'; dataDir: string; requestRole: string }
) &
  RequestTransactionSettings;

export interface Database {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `work` in a transaction scoped to `userId` (src/db/request-transaction.ts). */
  readonly withUser: WithUser;
  /**
   * Runs `work` in a transaction scoped to an engine client: it sees that
   * client's active grants and no user's rows. For src/engine only.
   */
  readonly withEngineClient: WithEngineClient;
  /** Runs `work` as the request role scoped to no one (it sees no row): for the start-up checks. */
  readonly withRequestRole: WithRequestRole;
  /**
   * Runs one statement that is a whole transaction by itself, scoped like the
   * above, sent with its scope as one message (src/db/request-transaction.ts):
   * the engine API's bookkeeping, one round trip per call.
   */
  readonly inOneMessage: InOneMessage;
  /** The distinct key ids stored credentials are sealed with, read without opening a row (src/db/probes.ts). */
  credentialKeyIds(): Promise<string[]>;
  /**
   * Resolves when a request could be served: a transaction on the requests'
   * connection, as the request role, reads a user-data table (seeing no row).
   * For /ready: it fails when the role, its grants or that connection do.
   */
  ping(): Promise<void>;
  /** The connections right now, for db_pool_connections (read at each scrape, costs nothing otherwise). */
  connections(): PoolConnections;
  /** Applies pending migrations on this open database (normally none: it migrated when it opened). */
  migrate(): Promise<MigrationResult>;
  /**
   * Hears the sessions that end anywhere, on every instance (src/db/session-revocations.ts):
   * closed by close(), before the pools.
   */
  watchSessionRevocations(handlers: RevocationHandlers): RevocationWatch;
  /**
   * Whether a notification sent through the owner's pool reaches a listener
   * on the listen connection within `timeoutMs` (start-up check). Throws
   * when the listen connection cannot be made.
   */
  notificationsArrive(timeoutMs: number): Promise<boolean>;
  /** Closes the revocation listeners, then the pools (or the PGlite files). */
  close(): Promise<void>;
  /**
   * The unscoped client, for tables that hold no user data: better-auth's
   * (and key rotation's walk over its users), the shared rate-limit
   * counters, engine clients and tokens. It runs as the connection's login
   * role, outside any user's scope: request code must never use it on user
   * data (test/unit/architecture.test.ts lists where it may appear).
   */
  readonly unscopedClient: PrismaClient;
}

/**
 * PostgreSQL: the pg pools' own counts (active = open - idle; waiting =
 * requests queued for a connection), both pools added up when requests use
 * their own login. PGlite has one backend: active 1 while a request
 * transaction holds it (the others wait), else idle 1.
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
   * Called with each new pg connection (before the BEGIN-scope hook wraps it)
   * or with the PGlite instance, once migrations ran: how tests observe what
   * is sent (test/support/statement-counter.ts), and how tracing adds SQL
   * spans on PGlite (src/telemetry/spans.ts).
   */
  instrument?: Instrumentation;
}

export function openDatabase(config: DatabaseOptions, options: OpenOptions): Promise<Database> {
  return config.kind === 'pglite' ? openPglite(config, options) : openPostgres(config, options);
}
