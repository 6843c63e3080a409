// The command-line tasks (src/cli/task.ts) on the server's configuration:
// no development secret generated or written, and a failure as one line
// (exit 78 for configuration, 1 for an operation), never a stack trace.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
let tdb: TestDatabase;
let scratch: string;

beforeEach(async () => {
  tdb = await createTestDatabase();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'bca-cli-'));
});
afterEach(async () => {
  await tdb.drop();
  await rm(scratch, { recursive: true, force: true });
});

/** DATA_DIR: the scratch folder on PostgreSQL, the database's own on PGlite. */
const dataDir = () => tdb.env.DATA_DIR ?? scratch;

function task(script: string, args: string[] = [], env: Record<string, string> = {}) {
  return promisify(execFile)(process.execPath, [`src/cli/${script}.ts`, ...args], {
    cwd: ROOT,
    // No ENCRYPTION_KEY, no BETTER_AUTH_SECRET: what the server would generate.
    env: { PATH: process.env.PATH ?? '', DATA_DIR: scratch, LOG_LEVEL: 'info', ...tdb.env, ...env },
    timeout: 60_000,
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

describe(`CLI tasks (${dbKind})`, () => {
  it('migrate and engine-client need no secret: no warning, no development-secrets file', async () => {
    const migrated = await task('migrate');
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toMatch(/migrations up to date/);
    const listed = await task('engine-client', ['list']);
    expect(listed).toMatchObject({ code: 0, stdout: '[]\n' });
    for (const out of [migrated, listed]) expect(out.stderr).not.toMatch(/WARNING|dev-secrets/);
    expect(await readdir(dataDir())).not.toContain('dev-secrets.json');
  });

  it('a migration that cannot run: one line, exit 1', async () => {
    const db = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
    await db.unscopedClient.$executeRawUnsafe(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES ('x', 'abc', '29990101000000_failed', 'boom')`,
    );
    await db.close();
    const result = await task('migrate');
    expect(result.code).toBe(1);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^migrate failed: Migration "29990101000000_failed" is recorded as started but not finished/,
      ),
    ]);
  });

  it('rotate-key without the servers’ key: one line naming ENCRYPTION_KEY, exit 78, nothing written', async () => {
    const result = await task('rotate-key');
    expect(result.code).toBe(78);
    expect(lines(result.stderr)).toEqual([
      dbKind === 'postgres'
        ? 'Invalid configuration: ENCRYPTION_KEY: not set: set it (and ENCRYPTION_KEYS) as the servers have them'
        : `Invalid configuration: ENCRYPTION_KEY: not set, and ${path.join(dataDir(), 'dev-secrets.json')} holds none: set it (and ENCRYPTION_KEYS) as the server has them`,
    ]);
    expect(await readdir(dataDir())).not.toContain('dev-secrets.json');
  });

  it('a wrong argument: the usage, exit 1, no stack trace', async () => {
    const result = await task('rotate-key', ['--bogus']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^Unknown option '--bogus'/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
