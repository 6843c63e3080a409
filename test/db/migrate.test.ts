// The migration runner against a real, fresh database (PostgreSQL or PGlite).
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  applyMigrations,
  MIGRATIONS_DIR,
  type MigrationConnection,
  MigrationError,
  REWORDED_MIGRATIONS,
  readLocalMigrations,
  withMigrationConnection,
} from '../../src/db/migrations.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';

let tdb: TestDatabase;
let pglite: PGlite | undefined;
let dir: string;

/** Runs `work` on a fresh migration connection to the test database. */
function onDb<T>(work: (conn: MigrationConnection) => Promise<T>): Promise<T> {
  return withMigrationConnection(tdb.config, work, pglite);
}

const migrate = async (from = dir) => onDb(async (conn) => applyMigrations(conn, await readLocalMigrations(from)));

const history = () =>
  onDb((conn) =>
    conn.query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
      'SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name',
    ),
  );

async function addMigration(name: string, sql: string): Promise<string> {
  await mkdir(path.join(dir, name));
  const file = path.join(dir, name, 'migration.sql');
  await writeFile(file, sql);
  return file;
}

beforeEach(async () => {
  tdb = await createTestDatabase();
  if (tdb.config.kind === 'pglite') {
    pglite = new PGlite(tdb.config.dataDir);
    await pglite.waitReady;
  }
  // A private copy of the real migrations, so tests can add and edit files.
  dir = await mkdtemp(path.join(os.tmpdir(), 'bca-migrations-'));
  await cp(MIGRATIONS_DIR, dir, { recursive: true });
});

afterEach(async () => {
  await pglite?.close();
  pglite = undefined;
  await tdb.drop();
  await rm(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await pglite?.close();
});

describe(`migration runner (${dbKind})`, () => {
  it("applies the project's migrations and records them as Prisma does", async () => {
    const result = await migrate(MIGRATIONS_DIR);
    const local = await readLocalMigrations(MIGRATIONS_DIR);
    expect(result.applied).toEqual(local.map((m) => m.name));
    const rows = await history();
    expect(rows.map((r) => r.migration_name)).toEqual(local.map((m) => m.name));
    for (const row of rows) {
      const file = await readFile(path.join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'));
      // Prisma records the SHA-256 of the file's bytes in hex: computed here
      // with WebCrypto, not with the runner's own checksumOf.
      expect(row.checksum).toBe(Buffer.from(await crypto.subtle.digest('SHA-256', file)).toString('hex'));
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.applied_steps_count).toBe(1);
    }
    // The bookkeeping table has exactly the columns Prisma's engine creates.
    const columns = await onDb((conn) =>
      conn.query<{ column_name: string; data_type: string; is_nullable: string }>(
        `SELECT column_name, data_type, is_nullable FROM information_schema.columns
         WHERE table_name = '_prisma_migrations' ORDER BY column_name`,
      ),
    );
    expect(columns).toEqual([
      { column_name: 'applied_steps_count', data_type: 'integer', is_nullable: 'NO' },
      { column_name: 'checksum', data_type: 'character varying', is_nullable: 'NO' },
      { column_name: 'finished_at', data_type: 'timestamp with time zone', is_nullable: 'YES' },
      { column_name: 'id', data_type: 'character varying', is_nullable: 'NO' },
      { column_name: 'logs', data_type: 'text', is_nullable: 'YES' },
      { column_name: 'migration_name', data_type: 'character varying', is_nullable: 'NO' },
      { column_name: 'rolled_back_at', data_type: 'timestamp with time zone', is_nullable: 'YES' },
      { column_name: 'started_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
    ]);
  });

  it('is idempotent: a second run applies nothing and records nothing', async () => {
    await migrate();
    const before = await history();
    const again = await migrate();
    expect(again).toEqual({ applied: [], alreadyApplied: before.length });
    expect(await history()).toEqual(before);
  });

  it('applies only the new migration when one is added', async () => {
    await migrate();
    await addMigration('29990101000000_add_probe', 'CREATE TABLE probe (id int);\n');
    const result = await migrate();
    expect(result.applied).toEqual(['29990101000000_add_probe']);
    const probe = (await history()).find((r) => r.migration_name === '29990101000000_add_probe');
    // `printf 'CREATE TABLE probe (id int);\n' | sha256sum`, the value Prisma's engine records for this file.
    expect(probe?.checksum).toBe('b5333347695d53a0527d27bf61e673321bb7bfe69d6a5c2a5b8a198e7310c867');
    expect(await onDb((conn) => conn.query(`SELECT count(*)::int AS n FROM probe`))).toEqual([{ n: 0 }]);
  });

  it('refuses to run when an applied migration was changed', async () => {
    const file = await addMigration('29990101000000_add_probe', 'CREATE TABLE probe (id int);\n');
    await migrate();
    await writeFile(file, 'CREATE TABLE probe (id bigint);\n');
    await addMigration('29990102000000_next', 'CREATE TABLE probe2 (id int);');
    await expect(migrate()).rejects.toThrow(MigrationError);
    await expect(migrate()).rejects.toThrow(/"29990101000000_add_probe" was changed after it was applied/);
    // Nothing after the changed migration ran.
    expect((await history()).map((r) => r.migration_name)).not.toContain('29990102000000_next');
  });

  it('accepts a migration whose line endings were converted (as Prisma does)', async () => {
    const file = await addMigration('29990101000000_add_probe', 'CREATE TABLE probe (id int);\nSELECT 1;\n');
    await migrate();
    await writeFile(file, 'CREATE TABLE probe (id int);\r\nSELECT 1;\r\n');
    await expect(migrate()).resolves.toMatchObject({ applied: [] });
  });

  it('takes a database that recorded a reworded migration as up to date, and records the file as it is now', async () => {
    await migrate();
    const reworded = Object.entries(REWORDED_MIGRATIONS);
    expect(reworded.length).toBeGreaterThan(0);
    const setChecksum = (name: string, checksum: string) =>
      onDb((conn) =>
        conn.query('UPDATE _prisma_migrations SET checksum = $1 WHERE migration_name = $2', [checksum, name]),
      );
    for (const [name, [previous]] of reworded) await setChecksum(name, previous as string);
    await expect(migrate()).resolves.toMatchObject({ applied: [] });
    const files = new Map((await readLocalMigrations(dir)).map((m) => [m.name, m.checksum]));
    for (const row of await history()) expect(row.checksum, row.migration_name).toBe(files.get(row.migration_name));
    // Any other checksum of those migrations is still a change.
    const [name] = reworded[0] as [string, readonly string[]];
    await setChecksum(name, 'f'.repeat(64));
    await expect(migrate()).rejects.toThrow(`"${name}" was changed after it was applied`);
  });

  it('rolls a failing migration back completely, records nothing, and retries it next time', async () => {
    await migrate();
    const file = await addMigration('29990101000000_broken', 'CREATE TABLE half_done (id int);\nSELECT 1 / 0;\n');
    await expect(migrate()).rejects.toThrow(/"29990101000000_broken" failed and was rolled back: division by zero/);
    const tables = await onDb((conn) =>
      conn.query(`SELECT 1 FROM information_schema.tables WHERE table_name = 'half_done'`),
    );
    expect(tables).toEqual([]);
    expect((await history()).map((r) => r.migration_name)).not.toContain('29990101000000_broken');

    await writeFile(file, 'CREATE TABLE half_done (id int);\n');
    await expect(migrate()).resolves.toMatchObject({ applied: ['29990101000000_broken'] });
  });

  it('refuses to run past a migration that Prisma recorded as failed', async () => {
    await migrate();
    await onDb((conn) =>
      conn.query(
        `INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES ('x', 'abc', '29990101000000_failed', 'boom')`,
      ),
    );
    await expect(migrate()).rejects.toThrow(/"29990101000000_failed" is recorded as started but not finished/);
  });

  it.runIf(dbKind === 'postgres')('lets concurrent runners apply each migration exactly once', async () => {
    const results = await Promise.all([migrate(), migrate(), migrate()]);
    const local = await readLocalMigrations(dir);
    expect(results.flatMap((r) => r.applied).sort()).toEqual(local.map((m) => m.name).sort());
    expect(await history()).toHaveLength(local.length);
  });
});
