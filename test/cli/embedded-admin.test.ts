// One process per embedded database (PGlite in DATA_DIR): while a server
// runs, the command-line tasks (`engine-client`, `rotate-key`, `migrate`)
// work through its admin endpoint and never open the files themselves (each
// runs with test/support/no-pglite.ts, which fails the process if PGlite is
// so much as loaded); a second server stops at start naming DATA_DIR (exit
// 78); a server killed with SIGKILL leaves nothing that stops the next.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REQUEST_TRANSACTION_DEFAULTS } from '../../src/config/load.ts';
import { defaultKeyId, Keyring } from '../../src/crypto/keyring.ts';
import { lockDataDir, unlockDataDir } from '../../src/db/data-dir-lock.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { readCredentialSecrets } from '../../src/services/credential-secrets.ts';
import { createTestDatabase, dbKind, PGLITE_TEMPLATE_DIR, type TestDatabase } from '../support/databases.ts';
import { engineRequest, requestToken } from '../support/engine.ts';
import { eventually, jsonLines } from '../support/poll.ts';
import { type SeededUser, seedUser } from '../support/seed.ts';
import { startServer, type TestServer, testSecrets } from '../support/server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NO_PGLITE = path.join(ROOT, 'test/support/no-pglite.ts');
/** What the hook says when it stops a process (not imported: importing it would install it here). */
const PGLITE_LOADED = 'PGlite was loaded in a process that must not open the database files';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node src/cli/<script>.ts ARGS` on `db`, with the no-PGlite hook unless `hook` is false. */
function task(db: TestDatabase, script: string, args: string[] = [], env: Record<string, string> = {}, hook = true) {
  return promisify(execFile)(
    process.execPath,
    [...(hook ? ['--import', NO_PGLITE] : []), `src/cli/${script}.ts`, ...args],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...testSecrets, ...db.env, ...env },
      timeout: 90_000,
    },
  ).then(
    (r): Run => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number | null; stdout: string; stderr: string }): Run => ({
      code: typeof e.code === 'number' ? e.code : null,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

/** `node src/main.ts` on `db` until it exits (one that starts would be killed at the timeout). */
function serverRun(db: TestDatabase): Promise<Run> {
  return promisify(execFile)(process.execPath, ['src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'development', PORT: '0', ...testSecrets, ...db.env },
    timeout: 60_000,
  }).then(
    (r): Run => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number | null; stdout: string; stderr: string }): Run => ({
      code: typeof e.code === 'number' ? e.code : null,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

/** One request to a server's admin socket: a value is sent as JSON, a string as written. */
function adminCall(
  socketPath: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method,
        path: route,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A copy of the PGlite template in a DATA_DIR whose admin socket path is over the 107 bytes a socket may have. */
async function longPathDatabase(): Promise<TestDatabase> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'bca-long-'));
  const dataDir = path.join(root, 'a-data-directory-deep-enough'.repeat(3));
  await mkdir(dataDir, { recursive: true });
  await cp(PGLITE_TEMPLATE_DIR, path.join(dataDir, 'pgdata'), { recursive: true });
  return {
    config: {
      kind: 'pglite',
      dataDir: path.join(dataDir, 'pgdata'),
      requestRole: 'app_user',
      ...REQUEST_TRANSACTION_DEFAULTS,
    },
    env: { DATA_DIR: dataDir },
    drop: () => rm(root, { recursive: true, force: true }),
  };
}

const dataDirOf = (db: TestDatabase) => db.env.DATA_DIR as string;

describe.runIf(dbKind === 'pglite')('command-line tasks and a running server on one DATA_DIR (pglite)', () => {
  let tdb: TestDatabase;
  const servers: TestServer[] = [];
  const start = async (db: TestDatabase, env: Record<string, string> = {}) => {
    const server = await startServer({ db, env });
    servers.push(server);
    return server;
  };

  beforeEach(async () => {
    tdb = await createTestDatabase();
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    await tdb.drop();
  });

  it('engine-client create, list and revoke work through the running server, which serves the new client at once', async () => {
    const db = await longPathDatabase();
    try {
      expect(Buffer.byteLength(path.join(dataDirOf(db), 'admin.sock'))).toBeGreaterThan(108);
      // Asked while the server is still opening the database: the task waits for it.
      const starting = start(db);
      await eventually('the admin socket', () => existsSync(path.join(dataDirOf(db), 'admin.sock')), {
        timeoutMs: 30_000,
      });
      const created = await task(db, 'engine-client', ['create', 'Live bot']);
      const server = await starting;
      expect(created.code, created.stderr).toBe(0);
      expect(lines(created.stdout)).toHaveLength(1);
      const client = JSON.parse(created.stdout) as { clientId: string; clientSecret: string; name: string };
      expect(client).toEqual({
        clientId: expect.stringMatching(/^ec_/),
        clientSecret: expect.stringMatching(/^ecs_/),
        name: 'Live bot',
      });

      // The running server knows it at once.
      const token = await requestToken(server.url, client);
      expect(token.status, token.text).toBe(200);
      const accessToken = token.body.access_token as string;
      expect((await engineRequest(server.url, 'GET', '/engine/v1/grants', { token: accessToken })).status).toBe(200);

      const listed = await task(db, 'engine-client', ['list']);
      expect(listed.code, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout)).toEqual([
        { id: client.clientId, name: 'Live bot', createdAt: expect.any(String), revokedAt: null },
      ]);

      const revoked = await task(db, 'engine-client', ['revoke', client.clientId]);
      expect(revoked.code, revoked.stderr).toBe(0);
      expect(JSON.parse(revoked.stdout)).toMatchObject({ id: client.clientId, revokedAt: expect.any(String) });
      expect((await engineRequest(server.url, 'GET', '/engine/v1/grants', { token: accessToken })).status).toBe(401);
      expect((await requestToken(server.url, client)).status).toBe(401);

      const unknown = await task(db, 'engine-client', ['revoke', 'ec_nobody']);
      expect(unknown).toMatchObject({ code: 1, stdout: '' });
      expect(unknown.stderr).toMatch(/no engine client with id "ec_nobody"/);
      const blank = await task(db, 'engine-client', ['create', ' ']);
      expect(blank.code).toBe(1);
      expect(lines(blank.stderr)).toEqual([
        expect.stringMatching(/^engine-client failed: NAME must be 1-100 characters/),
      ]);

      // Each action is in the server's log, the secret nowhere there.
      const admin = jsonLines(server.logs).filter((l) => typeof l.admin === 'string');
      expect(admin.map((l) => [l.admin, l.clientId])).toEqual([
        ['engine-client create', client.clientId],
        ['engine-client revoke', client.clientId],
      ]);
      expect(server.logs.join('\n')).not.toContain(client.clientSecret);

      // Written to the files the server has open: there after a restart.
      expect(await server.stop()).toBe(0);
      servers.splice(servers.indexOf(server), 1);
      const afterRestart = await start(db);
      const again = await task(db, 'engine-client', ['list']);
      expect(JSON.parse(again.stdout)).toEqual([
        { id: client.clientId, name: 'Live bot', createdAt: expect.any(String), revokedAt: expect.any(String) },
      ]);
      expect((await requestToken(afterRestart.url, client)).status).toBe(401);
    } finally {
      await Promise.all(servers.splice(0).map((s) => s.stop()));
      await db.drop();
    }
  }, 240_000);

  it('rotate-key re-encrypts with the server’s keys while it runs (refused, exit 78, for another key); migrate applies nothing', async () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const logger = createLogger('silent');
    const withDb = async <T>(work: (db: Database) => Promise<T>) => {
      const db = await openDatabase(tdb.config, { migrate: true, logger });
      try {
        return await work(db);
      } finally {
        await db.close();
      }
    };
    const user: SeededUser = await withDb((db) =>
      seedUser(db, new Keyring({ id: defaultKeyId(oldKey), key: oldKey }), 30),
    );
    const keys = { ENCRYPTION_KEY: newKey.toString('base64'), ENCRYPTION_KEYS: oldKey.toString('base64') };
    const server = await start(tdb, keys);

    const other = await task(tdb, 'rotate-key', [], { ...keys, ENCRYPTION_KEY: randomBytes(32).toString('base64') });
    expect(other.code).toBe(78);
    expect(lines(other.stderr)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^Invalid configuration: ENCRYPTION_KEY: the running server seals with key ${defaultKeyId(newKey)}, this task's ENCRYPTION_KEY is k-[0-9a-f]{16}: restart the server`,
        ),
      ),
    ]);

    const rotated = await task(tdb, 'rotate-key', ['--batch-size', '7'], keys);
    expect(rotated.code, rotated.stdout + rotated.stderr).toBe(0);
    const report = jsonLines(lines(rotated.stdout));
    expect(report.filter((l) => l.msg?.startsWith('rotated ')).at(-1)).toMatchObject({ done: 30, total: 30 });
    expect(report.at(-1)).toMatchObject({ msg: 'rotation complete', done: 30, remaining: 0, by: 'server' });

    const migrated = await task(tdb, 'migrate');
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(jsonLines(lines(migrated.stdout)).at(-1)).toMatchObject({
      msg: 'migrations up to date',
      applied: 0,
      by: 'server',
    });
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);

    expect(await server.stop()).toBe(0);
    servers.splice(0);
    await withDb(async (db) => {
      const rows = await db.withUser(user.userId, (tx) => tx.credential.findMany({ select: { keyId: true } }));
      expect(rows.map((r) => r.keyId)).toEqual(Array(30).fill(defaultKeyId(newKey)));
      const onlyNew = new Keyring({ id: defaultKeyId(newKey), key: newKey });
      for (const c of user.credentials) {
        expect(await readCredentialSecrets(db, onlyNew, user.userId, c.id)).toEqual({
          apiKey: c.apiKey,
          secretKey: c.secretKey,
        });
      }
    });
  }, 240_000);

  it('a second server on the same DATA_DIR stops at start naming it (exit 78); after a SIGKILL the next one starts, and its admin endpoint refuses bad input (400)', async () => {
    const first = await start(tdb);
    expect((await stat(path.join(dataDirOf(tdb), 'admin.sock'))).mode & 0o777).toBe(0o600);
    const second = await serverRun(tdb);
    expect(second.code).toBe(78);
    expect(lines(second.stderr)).toEqual([
      `DATA_DIR ${dataDirOf(tdb)} is in use by a running server (pid ${first.child.pid}): stop it first, or give this server a DATA_DIR of its own`,
    ]);
    expect((await fetch(`${first.url}/ready`)).status).toBe(200);

    expect(await first.stop('SIGKILL')).toBeNull();
    const next = await start(tdb);
    expect((await fetch(`${next.url}/ready`)).status).toBe(200);
    const listed = await task(tdb, 'engine-client', ['list']);
    expect(listed).toMatchObject({ code: 0, stdout: '[]\n' });

    // Bad input to the admin endpoint: 400 naming the field, nothing written.
    const socketPath = path.join(dataDirOf(tdb), 'admin.sock');
    expect(await adminCall(socketPath, 'POST', '/engine-clients', { name: 42 })).toEqual({
      status: 400,
      body: { error: { code: 'BAD_REQUEST', message: 'name must be a non-empty string' } },
    });
    expect(await adminCall(socketPath, 'POST', '/rotate-key', { keyId: 'k', batchSize: 0 })).toEqual({
      status: 400,
      body: { error: { code: 'BAD_REQUEST', message: 'batchSize must be a positive whole number' } },
    });
    expect((await adminCall(socketPath, 'POST', '/engine-clients', '{"name":')).status).toBe(400);
    expect((await adminCall(socketPath, 'DELETE', '/engine-clients')).status).toBe(404);
    expect(await task(tdb, 'engine-client', ['list'])).toMatchObject({ code: 0, stdout: '[]\n' });
  }, 180_000);

  it('while a task holds DATA_DIR, a server and other tasks stop, naming it (exit 78)', async () => {
    expect(lockDataDir(dataDirOf(tdb), 'task', 'migrate')).toEqual({ acquired: true });
    try {
      const server = await serverRun(tdb);
      expect(server.code).toBe(78);
      expect(lines(server.stderr)).toEqual([
        `DATA_DIR ${dataDirOf(tdb)} is in use by npm run migrate (pid ${process.pid}): stop it first, or give this server a DATA_DIR of its own`,
      ]);
      const other = await task(tdb, 'engine-client', ['list']);
      expect(other.code).toBe(78);
      expect(lines(other.stderr)).toEqual([
        `DATA_DIR ${dataDirOf(tdb)} is in use by npm run migrate (pid ${process.pid}): run this once it is done`,
      ]);
    } finally {
      unlockDataDir(dataDirOf(tdb));
    }
  });

  it('the hook is what it claims: a task that opens the database itself (no server) is stopped by it', async () => {
    const hooked = await task(tdb, 'engine-client', ['list']);
    expect(hooked.code).not.toBe(0);
    expect(hooked.stderr).toContain(PGLITE_LOADED);
    const plain = await task(tdb, 'engine-client', ['list'], {}, false);
    expect(plain).toMatchObject({ code: 0, stdout: '[]\n' });
  });
});
