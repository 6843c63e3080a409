// The migration runner: applies the SQL migrations in prisma/migrations
// (Prisma's folder layout) and records them in `_prisma_migrations` exactly as
// Prisma's schema engine does, on PostgreSQL or on the open PGlite.
//
// Why our own runner: `prisma migrate deploy` needs Prisma's native schema
// engine, which is downloaded at first use and cannot be fetched on machines
// without internet access (ours included), and it cannot talk to an
// in-process PGlite database at all. This runner keeps Prisma's bookkeeping
// (same table, same columns, sha256 checksum of migration.sql, the same
// advisory lock id), so `prisma migrate status`/`deploy` agree with it wherever
// the engine is available.
//
// Differences from the engine, on purpose:
// - the pending migrations of a run share one transaction (the engine runs
//   each script bare), so a failing migration leaves nothing half-applied
//   and the run is simply retried instead of needing `prisma migrate
//   resolve`, and a migration can refuse what an earlier one of the run did;
// - the advisory lock is transaction-scoped, so the runner also works through
//   a transaction-pooling PgBouncer. It shares the engine's lock key, so the
//   two never run at the same time.
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PGlite, Transaction } from '@electric-sql/pglite';
import pg from 'pg';
import type { Logger } from '../logger.ts';
import type { DatabaseOptions } from './database.ts';

/** The smallest surface the runner needs; pg.Client and PGlite both fit it. */
export interface MigrationConnection {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Runs a multi-statement script with the simple-query protocol. */
  exec(script: string): Promise<void>;
  /**
   * Runs `work` in one transaction on this connection, when BEGIN and COMMIT
   * sent as statements of their own would not do: on an open PGlite that
   * serves requests, another caller's statements could run between them.
   */
  transaction?<T>(work: (tx: MigrationConnection) => Promise<T>): Promise<T>;
}

export interface LocalMigration {
  name: string;
  script: Buffer;
  checksum: string;
}

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** Prisma's schema engine uses this key for pg_advisory_lock during migrate. */
const PRISMA_ADVISORY_LOCK_KEY = 72707369;

export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../prisma/migrations');

// Verbatim from Prisma's schema engine (sql-schema-connector, postgres flavour).
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export function checksumOf(script: Buffer | string): string {
  return createHash('sha256').update(script).digest('hex');
}

/**
 * Prisma accepts a checksum taken before a checkout converted line endings,
 * so a migration is "unchanged" if any LF/CRLF variant matches.
 */
function matchesChecksum(script: Buffer, recorded: string): boolean {
  const text = script.toString('utf8');
  const lf = text.replace(/\r\n/g, '\n');
  const variants = [script, lf, lf.replace(/\n/g, '\r\n')];
  return variants.some((v) => checksumOf(v) === recorded);
}

/**
 * Applied migrations whose comments were reworded later (their SQL is the
 * same, line for line): the checksum each file had when it was applied. A
 * database that recorded one of these is taken as up to date, and its row
 * gets the file's checksum now, so that Prisma's tools agree with the file
 * too. Anything else that changes an applied migration is still refused.
 */
export const REWORDED_MIGRATIONS: Readonly<Record<string, readonly string[]>> = {
  '20261201000000_credential_verification': ['019c8462abb69c6e580faba6a53952e58347f3e94dc0d8b81939a2ec24ddf6de'],
  '20261201000100_credential_events': ['9d06dcfef8837063bf0e05e9f9b4013f5d4b43ae0ca3321389c4aed5857439f7'],
  '20261202000000_engine_access': ['1841ee75ea9d265ae61e1fc20481f66b91875e42f2e10c3c772015c06afb1138'],
  '20261202000200_credential_cap': ['8ae58bf6fa267cee89d678a212098b0ac57060fce329900ba3d03cffc774fb7d'],
};

const rewordedFrom = (name: string, recorded: string) => REWORDED_MIGRATIONS[name]?.includes(recorded) ?? false;

export async function readLocalMigrations(dir: string = MIGRATIONS_DIR): Promise<LocalMigration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const script = await readFile(path.join(dir, name, 'migration.sql'));
      return { name, script, checksum: checksumOf(script) };
    }),
  );
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
}

async function inTransaction<T>(conn: MigrationConnection, work: (tx: MigrationConnection) => Promise<T>): Promise<T> {
  const locked = async (tx: MigrationConnection) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [PRISMA_ADVISORY_LOCK_KEY]);
    return work(tx);
  };
  if (conn.transaction) return conn.transaction(locked);
  await conn.exec('BEGIN');
  try {
    const result = await locked(conn);
    await conn.exec('COMMIT');
    return result;
  } catch (error) {
    await conn.exec('ROLLBACK');
    throw error;
  }
}

function verifyHistory(local: LocalMigration[], rows: AppliedRow[]): void {
  const failed = rows.find((r) => r.finished_at === null && r.rolled_back_at === null);
  if (failed) {
    throw new MigrationError(
      `Migration "${failed.migration_name}" is recorded as started but not finished (a failed run of ` +
        `Prisma's engine?). Inspect the database, then mark it with \`prisma migrate resolve\` or ` +
        `delete its row from _prisma_migrations. Logs: ${failed.logs ?? '(none)'}`,
    );
  }
  const byName = new Map(local.map((m) => [m.name, m]));
  for (const row of rows) {
    if (row.finished_at === null || row.rolled_back_at !== null) continue;
    const file = byName.get(row.migration_name);
    if (file && !matchesChecksum(file.script, row.checksum) && !rewordedFrom(row.migration_name, row.checksum)) {
      throw new MigrationError(
        `Migration "${row.migration_name}" was changed after it was applied ` +
          `(recorded checksum ${row.checksum}, file now ${file.checksum}). ` +
          `Applied migrations must never be edited: restore the file and add a new migration instead.`,
      );
    }
  }
}

/**
 * Applies every pending migration in name order, all in one transaction
 * under the advisory lock: a run applies everything or nothing, so a later
 * migration can refuse what an earlier one of the same run did (the
 * startup_checks migration refuses an app_user that bypasses RLS, which init
 * would otherwise have adopted for good). Safe to run concurrently from
 * several processes: whoever gets the lock second sees the migrations
 * recorded and skips them.
 */
export async function applyMigrations(
  conn: MigrationConnection,
  local: LocalMigration[],
  log: (message: string) => void = () => {},
): Promise<MigrationResult> {
  await inTransaction(conn, (tx) => tx.exec(CREATE_MIGRATIONS_TABLE));

  const readHistory = (on: MigrationConnection) =>
    on.query<AppliedRow>(
      'SELECT migration_name, checksum, finished_at, rolled_back_at, logs FROM "_prisma_migrations" ORDER BY started_at',
    );
  verifyHistory(local, await readHistory(conn));

  return inTransaction(conn, async (tx) => {
    // Re-read under the lock: another process may have applied some meanwhile.
    const history = await readHistory(tx);
    verifyHistory(local, history);
    for (const row of history) {
      const file = local.find((m) => m.name === row.migration_name);
      if (file && row.checksum !== file.checksum && rewordedFrom(row.migration_name, row.checksum)) {
        await tx.query('UPDATE "_prisma_migrations" SET checksum = $1 WHERE migration_name = $2 AND checksum = $3', [
          file.checksum,
          row.migration_name,
          row.checksum,
        ]);
      }
    }
    const applied: string[] = [];
    let alreadyApplied = 0;
    for (const migration of local) {
      const done = history.some(
        (r) => r.migration_name === migration.name && r.finished_at !== null && r.rolled_back_at === null,
      );
      if (done) {
        alreadyApplied += 1;
        continue;
      }
      const started = Date.now();
      const id = randomUUID();
      await tx.query(
        'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)',
        [id, migration.checksum, migration.name],
      );
      try {
        await tx.exec(migration.script.toString('utf8'));
      } catch (error) {
        throw new MigrationError(
          `Migration "${migration.name}" failed and was rolled back` +
            `${applied.length ? ` with the ${applied.length} applied before it in this run` : ''}: ${(error as Error).message}`,
        );
      }
      await tx.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [
        id,
      ]);
      log(`applied migration ${migration.name} in ${Date.now() - started} ms`);
      applied.push(migration.name);
    }
    return { applied, alreadyApplied };
  });
}

function pgliteMigrationConnection(db: PGlite | Transaction): MigrationConnection {
  return {
    query: async <R>(sql: string, params?: unknown[]) => (await db.query<R>(sql, params)).rows,
    exec: async (script) => {
      await db.exec(script);
    },
    // PGlite's transaction() holds its one backend until COMMIT: requests wait rather than run inside it.
    ...('transaction' in db
      ? {
          transaction: <T>(work: (tx: MigrationConnection) => Promise<T>) =>
            db.transaction((tx) => work(pgliteMigrationConnection(tx))),
        }
      : {}),
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
  config: DatabaseOptions,
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

/** Applies every pending migration of prisma/migrations and logs what it did. */
export async function runMigrations(
  config: DatabaseOptions,
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
