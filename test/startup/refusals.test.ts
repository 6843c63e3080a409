// Start-up refusals (docs/configuration.md): a spawned
// server, as an operator starts it, stops before it listens with exit status
// 78 and one line naming the variable; no stack trace. On both databases
// where the database is involved; PostgreSQL-only where the cluster is
// (a pooler, a login), PGlite-only where a cluster-wide role would be
// changed (other test files share the PostgreSQL cluster's app_user).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/crypto/keyring.ts';
import { openDatabase } from '../../src/db/database.ts';
import { applyMigrations, readLocalMigrations } from '../../src/db/migrations.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestDatabase, dbKind, queryDatabase, type TestDatabase, testDatabaseUrl } from '../support/databases.ts';
import { findPgBouncer, type PgBouncer, startPgBouncer } from '../support/pgbouncer.ts';
import { startServer, testSecrets } from '../support/server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const logger = createLogger('silent');
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'bca-startup-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  stderr: string;
  stdout: string;
}

/** Runs `node src/main.ts` until it exits (a server that starts would be killed at the timeout: code null). */
async function run(env: Record<string, string>, script = 'src/main.ts', args: string[] = []): Promise<Exit> {
  return promisify(execFile)(process.execPath, [script, ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      NODE_ENV: 'development',
      PORT: '0',
      LOG_LEVEL: 'info',
      DATA_DIR: scratch,
      ...testSecrets,
      ...env,
    },
    timeout: 60_000,
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number | null; stdout: string; stderr: string }) => ({
      code: typeof e.code === 'number' ? e.code : null,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

/** Exit 78, and stderr is exactly one line matching `line`, without a stack frame. */
function expectRefusal(exit: Exit, line: RegExp): void {
  const lines = exit.stderr.split('\n').filter((l) => l.trim() !== '');
  expect({ code: exit.code, lines }, exit.stdout + exit.stderr).toMatchObject({
    code: 78,
    lines: [expect.any(String)],
  });
  expect(lines[0]).toMatch(line);
  expect(exit.stderr).not.toMatch(/^\s+at /m);
}

/** Exit 69, and stderr is one line per variable in `lines`, naming it; no stack frame, no password. */
function expectUnreachable(exit: Exit, lines: RegExp[], password?: string): void {
  const printed = exit.stderr.split('\n').filter((l) => l.trim() !== '');
  expect({ code: exit.code, count: printed.length }, exit.stdout + exit.stderr).toEqual({
    code: 69,
    count: lines.length,
  });
  lines.forEach((line, i) => {
    expect(printed[i]).toMatch(line);
  });
  expect(exit.stderr).not.toMatch(/^\s+at /m);
  if (password) expect(exit.stdout + exit.stderr).not.toContain(password);
}

describe('an unreachable database (exit 69, naming the variable)', { timeout: 60_000 }, () => {
  const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
  const refused = `postgresql://app:${PASSWORD}@127.0.0.1:1/app`;

  it('a refused connection, for the server and every command-line task', async () => {
    const line =
      /^Database unreachable: DATABASE_URL \(app@127\.0\.0\.1:1\/app\): connection refused: nothing listens at that address and port$/;
    for (const [script, args] of [
      ['src/main.ts', []],
      ['src/cli/migrate.ts', []],
      ['src/cli/rotate-key.ts', []],
      ['src/cli/engine-client.ts', ['list']],
    ] as const) {
      expectUnreachable(await run({ DATABASE_URL: refused }, script, [...args]), [line], PASSWORD);
    }
  });

  it('a host name that does not resolve', async () => {
    expectUnreachable(
      await run({ DATABASE_URL: `postgresql://app:${PASSWORD}@nonexistent.invalid:5432/app` }),
      [
        /^Database unreachable: DATABASE_URL \(app@nonexistent\.invalid:5432\/app\): its host name does not resolve \(DNS, (ENOTFOUND|EAI_AGAIN)\)$/,
      ],
      PASSWORD,
    );
  });

  it('a server that accepts the connection and never answers', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const started = Date.now();
      expectUnreachable(await run({ DATABASE_URL: `postgresql://app:${PASSWORD}@127.0.0.1:${port}/app` }), [
        new RegExp(
          `^Database unreachable: DATABASE_URL \\(app@127\\.0\\.0\\.1:${port}/app\\): no answer within 5 s \\(connection timed out\\)$`,
        ),
      ]);
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      silent.close();
    }
  });

  it('both URLs, one line each', async () => {
    expectUnreachable(
      await run({ DATABASE_URL: refused, DATABASE_REQUEST_URL: `postgresql://req:${PASSWORD}@127.0.0.1:1/app` }),
      [/^Database unreachable: DATABASE_URL \(app@/, /^Database unreachable: DATABASE_REQUEST_URL \(req@/],
      PASSWORD,
    );
  });

  it('a malformed URL is configuration (78), its password not printed', async () => {
    const exit = await run({ DATABASE_URL: `postgresql://app:${PASSWORD}@[::1/app` });
    expectRefusal(exit, /^Invalid configuration: DATABASE_URL: is not a valid URL/);
    expect(exit.stderr).not.toContain(PASSWORD);
  });
});

describe.runIf(dbKind === 'postgres')('an unreachable database on a running PostgreSQL (postgres)', () => {
  const server = () => new URL(testDatabaseUrl as string);

  it('a database that does not exist', async () => {
    const url = server();
    url.pathname = `/bca_missing_${randomBytes(4).toString('hex')}`;
    const exit = await run({ DATABASE_URL: url.toString() });
    expectUnreachable(exit, [
      new RegExp(
        `^Database unreachable: DATABASE_URL \\(.*${url.pathname}\\): database "${url.pathname.slice(1)}" does not exist$`,
      ),
    ]);
  });

  it('a login that does not exist', async () => {
    const url = server();
    url.username = `bca_nobody_${randomBytes(4).toString('hex')}`;
    expectUnreachable(await run({ DATABASE_URL: url.toString() }), [
      new RegExp(`^Database unreachable: DATABASE_URL \\(${url.username}@.*\\): login refused: .*"${url.username}"`),
    ]);
  });

  it('a wrong password', async (ctx) => {
    const url = server();
    url.password = `wrong-${randomBytes(6).toString('hex')}`;
    const login = new pg.Client({ connectionString: url.toString() });
    const accepted = await login.connect().then(
      () => true,
      () => false,
    );
    await login.end().catch(() => {});
    // With trust authentication (this project's test cluster) any password logs in: nothing to refuse.
    if (accepted) ctx.skip();
    expectUnreachable(
      await run({ DATABASE_URL: url.toString() }),
      [/^Database unreachable: DATABASE_URL \(.*\): login refused: password authentication failed/],
      url.password,
    );
  });

  it('DATABASE_REQUEST_URL unreachable while DATABASE_URL works names DATABASE_REQUEST_URL alone', async () => {
    const tdb = await createTestDatabase();
    try {
      const exit = await run({
        ...tdb.env,
        DATABASE_REQUEST_URL: `postgresql://req:${'x'.repeat(12)}@127.0.0.1:1/app`,
      });
      expectUnreachable(
        exit,
        [/^Database unreachable: DATABASE_REQUEST_URL \(req@127\.0\.0\.1:1\/app\): connection refused/],
        'x'.repeat(12),
      );
    } finally {
      await tdb.drop();
    }
  });
});

describe('refusals before the database', () => {
  it('HOST that does not resolve', async () => {
    expectRefusal(
      await run({ HOST: 'not-a-host' }),
      /^Invalid configuration: HOST: "not-a-host" does not resolve \((ENOTFOUND|EAI_AGAIN)\): give an address or name of this machine/,
    );
  });

  it('METRICS_PORT equal to PORT', async () => {
    expectRefusal(
      await run({ PORT: '45871', METRICS_PORT: '45871' }),
      /^Invalid configuration: METRICS_PORT: is PORT \(45871\): metrics have a listener of their own/,
    );
  });

  it('a TRUSTED_ORIGINS entry that is not an origin', async () => {
    expectRefusal(
      await run({ TRUSTED_ORIGINS: 'notaurl' }),
      /^Invalid configuration: TRUSTED_ORIGINS: "notaurl" is not an origin: write scheme:\/\/host\[:port\]/,
    );
  });

  it('DATABASE_REQUEST_ROLE other than app_user', async () => {
    expectRefusal(
      await run({ DATABASE_REQUEST_ROLE: 'postgres' }),
      /^Invalid configuration: DATABASE_REQUEST_ROLE: was removed: the migrations create, grant and write every policy for app_user/,
    );
  });
});

// Each test opens the database, and spawns one or two servers on it (PGlite: each a few seconds, more on a busy machine).
describe(`refusals on the database (${dbKind})`, { timeout: 180_000 }, () => {
  let tdb: TestDatabase;
  const variable = dbKind === 'postgres' ? 'DATABASE_URL' : 'DATA_DIR';

  beforeEach(async () => {
    tdb = await createTestDatabase();
  });
  afterEach(async () => {
    await tdb.drop();
  });

  /** Migrates the test database, then runs `sql` on it as the owner. */
  async function prepare(sql?: string): Promise<void> {
    const db = await openDatabase(tdb.config, { migrate: true, logger });
    await db.close();
    if (!sql) return;
    if (tdb.url) {
      await queryDatabase(tdb.url, sql);
    } else if (tdb.config.kind === 'pglite') {
      const pglite = new PGlite(tdb.config.dataDir);
      await pglite.exec(sql);
      await pglite.close();
    }
  }

  it('stored credentials sealed with a key id no configured key has; starts once the key is listed again', async () => {
    const old = randomBytes(32);
    const db = await openDatabase(tdb.config, { migrate: true, logger });
    const { seedUser } = await import('../support/seed.ts');
    await seedUser(db, new Keyring({ id: 'old', key: old }), 2);
    await db.close();

    // After a rotation step that forgot the old key: the new key only.
    const next = randomBytes(32).toString('base64');
    expectRefusal(
      await run({ ...tdb.env, ENCRYPTION_KEY: next }),
      /^Invalid configuration: ENCRYPTION_KEYS: stored credentials are sealed with key id "old" that no configured key has: list the key in ENCRYPTION_KEYS \(id:base64key\) until `npm run rotate-key` has re-sealed them under ENCRYPTION_KEY$/,
    );

    const server = await startServer({
      db: tdb,
      env: { ENCRYPTION_KEY: next, ENCRYPTION_KEYS: `old:${old.toString('base64')}` },
    });
    try {
      expect((await fetch(`${server.url}/ready`)).status).toBe(200);
      const passed = server.logs
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === 'start-up checks passed');
      expect(passed).toMatchObject({
        level: 30,
        ms: expect.any(Number),
        checks: { keyCoverage: expect.any(Number), requestRole: expect.any(Number) },
      });
    } finally {
      await server.stop();
    }
  });

  it('a database never migrated, with MIGRATE_ON_START=false', async () => {
    // PGlite's fresh copy has no app_user at all; the PostgreSQL cluster has one (roles are cluster-wide), but no tables here.
    expectRefusal(
      await run({ ...tdb.env, MIGRATE_ON_START: 'false' }),
      dbKind === 'pglite'
        ? /^Invalid configuration: DATA_DIR: the request role app_user does not exist there: run `npm run migrate` \(or start with MIGRATE_ON_START=true\)$/
        : /^Invalid configuration: DATABASE_URL: its tables are missing \(MIGRATE_ON_START=false on a database not migrated yet\?\): run `npm run migrate`, or start with MIGRATE_ON_START=true$/,
    );
  });

  it('a request role that holds a grant the migrations do not give', async () => {
    await prepare('GRANT SELECT ON auth_sessions TO app_user');
    expectRefusal(
      await run(tdb.env),
      new RegExp(
        `^Invalid configuration: ${variable}: the request role app_user does not hold exactly the grants of prisma/migrations \\(holds auth_sessions: SELECT beyond them\\)`,
      ),
    );
  });

  it('a request role that lacks one', async () => {
    await prepare('REVOKE INSERT ON credential_events FROM app_user');
    expectRefusal(
      await run(tdb.env),
      /does not hold exactly the grants of prisma\/migrations \(lacks credential_events: INSERT\)/,
    );
  });

  it('a user-data table whose row-level security is not forced', async () => {
    await prepare('ALTER TABLE user_credentials NO FORCE ROW LEVEL SECURITY');
    expectRefusal(
      await run(tdb.env),
      new RegExp(
        `^Invalid configuration: ${variable}: row-level security is not enabled and forced on user_credentials`,
      ),
    );
  });

  it.runIf(dbKind === 'pglite')('a request role that bypasses row-level security', async () => {
    await prepare('ALTER ROLE app_user BYPASSRLS');
    expectRefusal(
      await run(tdb.env),
      /^Invalid configuration: DATA_DIR: requests run as app_user, which is SUPERUSER or BYPASSRLS: row-level security would not hold them; run ALTER ROLE app_user NOSUPERUSER NOBYPASSRLS$/,
    );
  });

  it.runIf(dbKind === 'postgres')(
    'a DATABASE_LISTEN_URL that cannot be reached, or names another database',
    async () => {
      await prepare();
      expectRefusal(
        await run({ ...tdb.env, DATABASE_LISTEN_URL: 'postgresql://postgres@127.0.0.1:1/nowhere' }),
        /^Invalid configuration: DATABASE_LISTEN_URL: cannot listen for sign-outs there \(connect ECONNREFUSED 127\.0\.0\.1:1\): give it a direct connection to the database, or set SESSION_CACHE_TTL_MS=0$/,
      );
      // Another database hears nothing of this one's sign-outs.
      expectRefusal(
        await run({ ...tdb.env, DATABASE_LISTEN_URL: testDatabaseUrl as string }),
        /^Invalid configuration: DATABASE_LISTEN_URL: a notification sent through DATABASE_URL did not arrive on it within 2 s/,
      );
    },
  );

  it.runIf(dbKind === 'postgres')('a request login (DATABASE_REQUEST_URL) that is a superuser', async () => {
    await prepare();
    expectRefusal(
      await run({ ...tdb.env, DATABASE_REQUEST_URL: tdb.url as string }),
      /^Invalid configuration: DATABASE_REQUEST_URL: its login postgres is SUPERUSER or BYPASSRLS: a statement that ran RESET ROLE would see every row/,
    );
  });

  it.runIf(dbKind === 'postgres')(
    'a request login that is not a member of app_user; starts once it is (a login of its own)',
    async () => {
      await prepare();
      // Cluster-wide, so a name of its own, dropped after.
      const login = `bca_login_${randomBytes(4).toString('hex')}`;
      await queryDatabase(testDatabaseUrl as string, `CREATE ROLE ${login} LOGIN NOINHERIT`);
      try {
        const requestUrl = new URL(tdb.url as string);
        requestUrl.username = login;
        const env = { ...tdb.env, DATABASE_REQUEST_URL: requestUrl.toString() };
        expectRefusal(
          await run(env),
          /^Invalid configuration: DATABASE_REQUEST_URL: its login is not a member of the request role app_user: GRANT app_user TO that login$/,
        );
        await queryDatabase(testDatabaseUrl as string, `GRANT app_user TO ${login}`);
        const server = await startServer({ db: { ...tdb, env } });
        try {
          expect((await fetch(`${server.url}/ready`)).status).toBe(200);
        } finally {
          await server.stop();
        }
      } finally {
        await queryDatabase(testDatabaseUrl as string, `DROP ROLE ${login}`);
      }
    },
  );

  it.runIf(dbKind === 'postgres')('a HOST that is not an address of this machine', async () => {
    expectRefusal(
      await run({ ...tdb.env, HOST: '192.0.2.1' }),
      /^Invalid configuration: HOST: "192.0.2.1" is not an address of this machine: give one it has$/,
    );
  });
});

describe.runIf(dbKind === 'postgres' && findPgBouncer())(
  'prepared statements through PgBouncer (postgres)',
  { timeout: 120_000 },
  () => {
    let tdb: TestDatabase;
    let bouncer: PgBouncer;
    beforeAll(async () => {
      tdb = await createTestDatabase();
      const db = await openDatabase(tdb.config, { migrate: true, logger });
      await db.close();
      bouncer = await startPgBouncer(findPgBouncer() as string, {
        upstreamUrl: testDatabaseUrl as string,
        poolSize: 4,
      });
    });
    afterAll(async () => {
      await bouncer?.stop();
      await tdb?.drop();
    });

    it('refuses DATABASE_PREPARED_STATEMENTS=true where the pooler cannot carry them (before 1.21), starts without', async () => {
      const through = bouncer.through(tdb.url as string);
      const env = { DATABASE_URL: through, MIGRATE_ON_START: 'false', DATABASE_PREPARED_STATEMENTS: 'true' };
      // 1.21 and later carry them (the helper sets max_prepared_statements there): the server would start.
      if (bouncer.version[0] === 1 && bouncer.version[1] < 21) {
        expectRefusal(
          await run(env),
          /^Invalid configuration: DATABASE_PREPARED_STATEMENTS: named prepared statements do not survive this connection \(prepared statement "bca_startup_[0-9a-f]+" (already exists|does not exist)\): a transaction-pooling PgBouncer before 1\.21/,
        );
      }
      const server = await startServer({
        db: { ...tdb, env: { ...env, DATABASE_PREPARED_STATEMENTS: 'false', DATABASE_LISTEN_URL: tdb.url as string } },
      });
      try {
        expect((await fetch(`${server.url}/ready`)).status).toBe(200);
      } finally {
        await server.stop();
      }
    });

    it('refuses a session cache whose sign-outs would be announced through the pooler (no DATABASE_LISTEN_URL)', async () => {
      const through = bouncer.through(tdb.url as string);
      const started = Date.now();
      expectRefusal(
        await run({ DATABASE_URL: through, MIGRATE_ON_START: 'false' }),
        /^Invalid configuration: DATABASE_LISTEN_URL: a notification sent through DATABASE_URL did not arrive on DATABASE_URL \(its default\) within 2 s, so sign-outs would not reach the other instances: a transaction pooler\? set DATABASE_LISTEN_URL to a direct connection, or SESSION_CACHE_TTL_MS=0$/,
      );
      expect(Date.now() - started).toBeLessThan(20_000);
      // Without a cache, nothing is announced to anyone: it starts.
      const server = await startServer({
        db: { ...tdb, env: { DATABASE_URL: through, MIGRATE_ON_START: 'false', SESSION_CACHE_TTL_MS: '0' } },
      });
      try {
        expect((await fetch(`${server.url}/ready`)).status).toBe(200);
      } finally {
        await server.stop();
      }
    });

    it('passes the check directly on PostgreSQL', async () => {
      const server = await startServer({ db: { ...tdb, env: { ...tdb.env, DATABASE_PREPARED_STATEMENTS: 'true' } } });
      try {
        expect((await fetch(`${server.url}/ready`)).status).toBe(200);
      } finally {
        await server.stop();
      }
    });
  },
);

describe.runIf(dbKind === 'pglite')('the migrations refuse an app_user that bypasses RLS (pglite)', () => {
  it('rolls the whole run back: the init migration does not adopt it', async () => {
    const tdb = await createTestDatabase();
    const pglite = new PGlite((tdb.config as { dataDir: string }).dataDir);
    try {
      await pglite.exec('CREATE ROLE app_user NOLOGIN BYPASSRLS');
      const conn = {
        query: async <R>(sql: string, params?: unknown[]) => (await pglite.query<R>(sql, params)).rows,
        exec: async (script: string) => {
          await pglite.exec(script);
        },
      };
      await expect(applyMigrations(conn, await readLocalMigrations())).rejects.toThrow(
        /"20261202000300_startup_checks" failed and was rolled back with the 5 applied before it in this run: the existing role app_user is SUPERUSER or BYPASSRLS/,
      );
      expect((await pglite.query(`SELECT 1 FROM pg_class WHERE relname = 'user_credentials'`)).rows).toEqual([]);
      expect((await pglite.query('SELECT count(*)::int AS n FROM _prisma_migrations')).rows).toEqual([{ n: 0 }]);
    } finally {
      await pglite.close();
      await tdb.drop();
    }
  });
});

describe(`DATA_DIR (${dbKind})`, () => {
  it.runIf(dbKind === 'pglite')(
    'is created with its parents when missing, secrets given',
    async () => {
      const dataDir = path.join(scratch, 'a', 'b', 'c');
      const server = await startServer({
        db: { config: { kind: 'pglite', dataDir } as never, env: { DATA_DIR: dataDir }, drop: async () => {} },
      });
      try {
        expect((await fetch(`${server.url}/ready`)).status).toBe(200);
        expect((await stat(path.join(dataDir, 'pgdata'))).isDirectory()).toBe(true);
      } finally {
        await server.stop();
      }
    },
    120_000,
  );
});
