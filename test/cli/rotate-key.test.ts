// `npm run rotate-key` as an operator runs it: killed half-way and run again,
// and while a server keeps changing the same credentials.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultKeyId, Keyring } from '../../src/crypto/keyring.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { readCredentialSecrets } from '../../src/services/credential-secrets.ts';
import { gql, signUp } from '../support/client.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';
import { type SeededUser, seedCredentials, seedUser } from '../support/seed.ts';
import { startServer, testSecrets } from '../support/server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const logger = createLogger('silent');
const newKey = () => {
  const key = randomBytes(32);
  return { id: defaultKeyId(key), key, b64: key.toString('base64') };
};

let tdb: TestDatabase;
let oldKey: ReturnType<typeof newKey>;
let nextKey: ReturnType<typeof newKey>;

beforeEach(async () => {
  tdb = await createTestDatabase();
  oldKey = newKey();
  nextKey = newKey();
});
afterEach(async () => {
  await tdb.drop();
});

async function withDb<T>(work: (db: Database) => Promise<T>): Promise<T> {
  // The seeds put up to 200 credentials on one account: above the default cap.
  const db = await openDatabase({ ...tdb.config, maxCredentialsPerAccount: 1000 }, { migrate: true, logger });
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

interface Run {
  code: number | null;
  lines: string[];
}

/** Runs the CLI; `killWhen` may kill it (SIGKILL) on a log line. */
function rotate(killWhen?: (line: { done?: number; total?: number }) => boolean): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['src/cli/rotate-key.ts', '--batch-size', '10'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        LOG_LEVEL: 'info',
        ...tdb.env,
        ENCRYPTION_KEY: nextKey.b64,
        ENCRYPTION_KEYS: oldKey.b64,
        BETTER_AUTH_SECRET: testSecrets.BETTER_AUTH_SECRET,
      },
    });
    const lines: string[] = [];
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        try {
          if (killWhen?.(JSON.parse(line))) child.kill('SIGKILL');
        } catch {
          // not a JSON log line
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => resolve({ code, lines }));
  });
}

async function keyIdCounts(db: Database, users: SeededUser[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const user of users) {
    const rows = await db.withUser(user.userId, (tx) => tx.credential.findMany({ select: { keyId: true } }));
    for (const { keyId } of rows) counts[keyId] = (counts[keyId] ?? 0) + 1;
  }
  return counts;
}

describe(`rotate-key CLI (${dbKind})`, () => {
  it('can be killed half-way and run again: nothing lost, everything readable, then all under the new key', async () => {
    const users = await withDb(async (db) => {
      const before = new Keyring(oldKey);
      return [await seedUser(db, before, 120), await seedUser(db, before, 30)];
    });

    const killed = await rotate((l) => l.done !== undefined && l.done >= 40 && l.done < 150);
    expect(killed.code, killed.lines.join('\n')).toBeNull();
    await withDb(async (db) => {
      const counts = await keyIdCounts(db, users);
      expect(counts[nextKey.id]).toBeGreaterThanOrEqual(40);
      expect(counts[oldKey.id]).toBeGreaterThan(0);
      expect((counts[nextKey.id] ?? 0) + (counts[oldKey.id] ?? 0)).toBe(150);
      const both = new Keyring(nextKey, [oldKey]);
      for (const user of users) {
        for (const c of user.credentials) {
          expect((await readCredentialSecrets(db, both, user.userId, c.id)).secretKey).toBe(c.secretKey);
        }
      }
    });

    const resumed = await rotate();
    expect(resumed.code).toBe(0);
    expect(resumed.lines.some((l) => l.includes('rotation complete'))).toBe(true);
    expect(resumed.lines.some((l) => /"total":150\b/.test(l))).toBe(false);
    await withDb(async (db) => {
      expect(await keyIdCounts(db, users)).toEqual({ [nextKey.id]: 150 });
      const onlyNew = new Keyring(nextKey);
      for (const user of users) {
        for (const c of user.credentials) {
          expect(await readCredentialSecrets(db, onlyNew, user.userId, c.id)).toEqual({
            apiKey: c.apiKey,
            secretKey: c.secretKey,
          });
        }
      }
    });
    // Three CLI runs and three opens of the database: on PGlite under load this took over 60 s.
  }, 240_000);

  // On the embedded database the rotation runs in the server itself (the task
  // asks it through its admin endpoint); the test opens the database only
  // while no server has it.
  it('runs safely while a server changes the same credentials', async () => {
    const env = { ENCRYPTION_KEY: nextKey.b64, ENCRYPTION_KEYS: oldKey.b64 };
    let server = await startServer({ db: tdb, env });
    try {
      const session = await signUp(server.url);
      const account = await gql(server.url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
      const accountId = account.body.data?.getOrCreateAccount.account.id as string;
      await server.stop();
      // Rows written before the key change, still under the old key.
      const seeded = await withDb((db) => seedCredentials(db, new Keyring(oldKey), session.user.id, accountId, 200));
      const expected = new Map(seeded.map((c) => [c.id, { apiKey: c.apiKey, secretKey: c.secretKey }]));
      server = await startServer({ db: tdb, env });
      const { url } = server;

      const UPDATE =
        'mutation($id: UUID!, $input: UpdateCredentialInput!) { updateCredential(id: $id, input: $input) { id } }';
      const changes = (async () => {
        for (const c of seeded.filter((_, i) => i % 3 === 0)) {
          const secretKey = `changed-${randomBytes(8).toString('hex')}`;
          const res = await gql(url, UPDATE, { id: c.id, input: { secretKey, nickname: 'changed' } }, session);
          expect(res.body.errors).toBeUndefined();
          expected.set(c.id, { apiKey: c.apiKey, secretKey });
        }
      })();
      const [first] = await Promise.all([rotate(), changes]);
      // The run must end on its own terms: either complete (exit 0), or, if the
      // server changed rows under it, a clean exit 1 whose last report counts
      // the rows left for the next pass. A crash (no such report) fails here
      // instead of being forgiven by the rerun.
      const report = first.lines.flatMap((l) => {
        try {
          const parsed = JSON.parse(l) as { remaining?: number };
          return typeof parsed.remaining === 'number' ? [parsed.remaining] : [];
        } catch {
          return [];
        }
      });
      expect(report, first.lines.join('\n')).toHaveLength(1);
      expect(first.code, first.lines.join('\n')).toBe(report[0] === 0 ? 0 : 1);
      if (report[0] !== 0) expect((await rotate()).code).toBe(0);

      expect(await server.stop()).toBe(0);
      await withDb(async (db) => {
        const rows = await db.withUser(session.user.id, (tx) => tx.credential.findMany({ select: { keyId: true } }));
        expect(rows).toHaveLength(200);
        expect(new Set(rows.map((r) => r.keyId))).toEqual(new Set([nextKey.id]));
        const onlyNew = new Keyring(nextKey);
        for (const [id, secrets] of expected) {
          expect(await readCredentialSecrets(db, onlyNew, session.user.id, id)).toEqual(secrets);
        }
      });
    } finally {
      await server.stop();
    }
  }, 240_000);
});
