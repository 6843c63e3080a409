// `npm run migrate` as the deploy step of docs/operations.md runs it: a fresh database gets
// every migration, a second run changes nothing, a server started with
// MIGRATE_ON_START=false then serves on it; a database it cannot reach is a
// non-zero exit. Asserted by exit codes and what the database holds, not by
// the CLI's wording.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readLocalMigrations } from '../../src/db/migrations.ts';
import { gql, signUp } from '../support/client.ts';
import { createTestDatabase, dbKind, queryDatabase, type TestDatabase } from '../support/databases.ts';
import { startServer, testSecrets } from '../support/server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

let tdb: TestDatabase;
beforeEach(async () => {
  tdb = await createTestDatabase();
});
afterEach(async () => {
  await tdb.drop();
});

/** `npm run migrate` with the given environment: its exit code. */
async function migrate(env: Record<string, string>): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('npm', ['run', '--silent', 'migrate'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        LOG_LEVEL: 'info',
        ...testSecrets,
        ...env,
      },
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

/** One query on the (closed) test database, as its owner. */
async function query<T>(sql: string): Promise<T[]> {
  if (tdb.url) return (await queryDatabase(tdb.url, sql)).rows as T[];
  const pglite = new PGlite(tdb.config.kind === 'pglite' ? tdb.config.dataDir : '');
  try {
    return (await pglite.query<T>(sql)).rows;
  } finally {
    await pglite.close();
  }
}

const history = () =>
  query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
    'SELECT migration_name, checksum, finished_at FROM _prisma_migrations ORDER BY migration_name',
  );

describe(`npm run migrate (${dbKind})`, () => {
  it('applies every migration to a fresh database, then nothing on a second run; the server then needs none', async () => {
    const local = await readLocalMigrations();
    const first = await migrate(tdb.env);
    expect(first.code, first.output).toBe(0);
    const applied = await history();
    expect(applied.map((m) => m.migration_name)).toEqual(local.map((m) => m.name));
    expect(applied.every((m) => m.finished_at !== null)).toBe(true);
    // The tables exist, with row-level security on the user data.
    const tables = await query<{ relname: string; relrowsecurity: boolean }>(
      `SELECT relname, relrowsecurity FROM pg_class
        WHERE relname IN ('user_accounts', 'user_credentials', 'credential_events') ORDER BY relname`,
    );
    expect(tables).toEqual([
      { relname: 'credential_events', relrowsecurity: true },
      { relname: 'user_accounts', relrowsecurity: true },
      { relname: 'user_credentials', relrowsecurity: true },
    ]);

    const second = await migrate(tdb.env);
    expect(second.code, second.output).toBe(0);
    expect(await history()).toEqual(applied);

    // The deploy docs/operations.md describes: migrate once, start instances without it.
    const server = await startServer({ db: tdb, env: { MIGRATE_ON_START: 'false' } });
    try {
      const session = await signUp(server.url);
      const res = await gql(server.url, 'mutation { getOrCreateAccount { created } }', undefined, session);
      expect(res.body).toEqual({ data: { getOrCreateAccount: { created: true } } });
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(await history()).toEqual(applied);
  }, 300_000);

  it('exits non-zero when it cannot reach the database, and leaves the configured one untouched', async () => {
    const failed = await migrate({ ...tdb.env, DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/nowhere' });
    expect(failed.code).not.toBe(0);
    expect(
      await query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename = '_prisma_migrations'`),
    ).toEqual([{ n: 0 }]);
  }, 60_000);
});
