// Fresh, throw-away databases for tests. TEST_DATABASE_URL (any database on a
// PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/postgres)
// selects PostgreSQL: each test database is created on that server and
// dropped after. Without it, each is a copy of a PGlite data directory that
// the global setup initialised once (initdb takes 5-20 s; a copy opens in ~2 s).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { REQUEST_TRANSACTION_DEFAULTS } from '../../src/config/load.ts';
import type { DatabaseOptions } from '../../src/db/database.ts';

export const testDatabaseUrl = process.env.TEST_DATABASE_URL || undefined;
export const dbKind: 'postgres' | 'pglite' = testDatabaseUrl ? 'postgres' : 'pglite';

const pgliteVersion = (
  JSON.parse(
    readFileSync(path.resolve(import.meta.dirname, '../../node_modules/@electric-sql/pglite/package.json'), 'utf8'),
  ) as { version: string }
).version;
/** Keyed by PGlite's version: a data directory only opens with the version that made it. */
export const PGLITE_TEMPLATE_DIR = path.join(os.tmpdir(), `bca-test-pglite-template-${pgliteVersion}`);

export interface TestDatabase {
  config: DatabaseOptions;
  /** Connection URL (PostgreSQL only). */
  url?: string;
  /** Environment variables that point a server process at this database. */
  env: Record<string, string>;
  drop(): Promise<void>;
}

export function withDatabase(url: string, database: string, user?: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (user) u.username = user;
  return u.toString();
}

export function adminQuery(sql: string, params?: unknown[]): Promise<pg.QueryResult> {
  return queryDatabase(testDatabaseUrl as string, sql, params);
}

/** One query on a PostgreSQL database, on a connection of its own. */
export async function queryDatabase(url: string, sql: string, params?: unknown[]): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  if (testDatabaseUrl) {
    const name = `bca_test_${randomBytes(6).toString('hex')}`;
    await adminQuery(`CREATE DATABASE ${name}`);
    const url = withDatabase(testDatabaseUrl, name);
    return {
      config: { kind: 'postgres', url, poolSize: 10, requestRole: 'app_user', ...REQUEST_TRANSACTION_DEFAULTS },
      url,
      env: { DATABASE_URL: url },
      drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => undefined),
    };
  }
  const dataRoot = await mkdtemp(path.join(os.tmpdir(), 'bca-test-'));
  const dataDir = path.join(dataRoot, 'pgdata');
  await cp(PGLITE_TEMPLATE_DIR, dataDir, { recursive: true });
  return {
    config: { kind: 'pglite', dataDir, requestRole: 'app_user', ...REQUEST_TRANSACTION_DEFAULTS },
    env: { DATA_DIR: dataRoot },
    drop: () => rm(dataRoot, { recursive: true, force: true }),
  };
}
