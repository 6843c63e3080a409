// How a request transaction begins on PostgreSQL (src/db/request-transaction.ts,
// scopeTransactionsOnBegin): BEGIN and the scope wait for the transaction's
// first statement and leave with it, so that statement does not wait for the
// scope's answer; it never runs without the scope; and a transaction that
// runs no statement sends nothing. Seen at the driver: each statement's send
// and answer, in order.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';

const logger = createLogger('silent');
let tdb: TestDatabase;
const opened: Database[] = [];
let events: string[] = [];

const label = (sql: string) =>
  sql.startsWith('BEGIN;') ? 'scope' : /^(COMMIT|ROLLBACK)$/.test(sql) ? sql : 'statement';

/** The database on one connection, every statement's send and answer recorded in `events`. */
async function open(requestRole = 'app_user'): Promise<Database> {
  if (tdb.config.kind !== 'postgres') throw new Error('PostgreSQL only');
  const db = await openDatabase(
    { ...tdb.config, poolSize: 1, requestRole },
    {
      migrate: true,
      logger,
      instrument: {
        pgConnection(client: pg.PoolClient) {
          const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown> | undefined;
          client.query = ((...args: unknown[]) => {
            const first = args[0] as string | { text?: string };
            const name = label(typeof first === 'string' ? first : (first.text ?? ''));
            events.push(`send ${name}`);
            const done = (error: unknown) => events.push(`${error ? 'error' : 'answer'} ${name}`);
            const callback = args.at(-1);
            if (typeof callback === 'function') {
              // pg-pool's own pool.query passes a callback.
              return query(...args.slice(0, -1), (error: unknown, result: unknown) => {
                done(error);
                callback(error, result);
              });
            }
            return query(...args)?.then(
              (result) => {
                done(null);
                return result;
              },
              (error: unknown) => {
                done(error);
                throw error;
              },
            );
          }) as typeof client.query;
        },
      },
    },
  );
  opened.push(db);
  return db;
}

describe.runIf(dbKind === 'postgres')('the scope rides with the first statement (postgres)', () => {
  let db: Database;
  const user = `scope-${randomUUID()}`;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = await open();
    await db.unscopedClient.user.create({ data: { id: user, email: `${user}@example.test`, name: user } });
  });

  afterAll(async () => {
    for (const d of opened) await d.close();
    await tdb?.drop();
  });

  it('sends the first statement before the scope has answered, in one round trip, and then COMMIT', async () => {
    events = [];
    const rows = await db.withUser(user, (tx) => tx.userAccount.findMany({ select: { id: true } }));
    expect(rows).toEqual([]);
    expect(events).toEqual([
      'send scope',
      'send statement',
      'answer scope',
      'answer statement',
      'send COMMIT',
      'answer COMMIT',
    ]);
  });

  it('sends later statements one at a time, as before', async () => {
    events = [];
    await db.withUser(user, async (tx) => {
      await tx.userAccount.findMany({ select: { id: true } });
      await tx.credential.findMany({ select: { id: true } });
    });
    expect(events.slice(4)).toEqual(['send statement', 'answer statement', 'send COMMIT', 'answer COMMIT']);
  });

  it('sends nothing for a transaction that runs no statement', async () => {
    events = [];
    expect(await db.withUser(user, async () => 42)).toBe(42);
    expect(events).toEqual([]);
    // Nothing is left over on the connection: the next transaction begins as usual.
    await db.withUser(user, (tx) => tx.userAccount.findMany({ select: { id: true } }));
    expect(events.slice(0, 3)).toEqual(['send scope', 'send statement', 'answer scope']);
  });

  it('never runs a statement without its scope: a scope that fails fails the statement with its own error', async () => {
    const broken = await open('no_such_role');
    events = [];
    await expect(broken.withUser(user, (tx) => tx.userAccount.findMany({ select: { id: true } }))).rejects.toThrow(
      /no_such_role/,
    );
    expect(events.slice(0, 4)).toEqual(['send scope', 'send statement', 'error scope', 'error statement']);
    expect(events.slice(4)).toEqual(['send ROLLBACK', 'answer ROLLBACK']);
    // The transaction was rolled back: the same connection fails the same way again, not as an aborted transaction.
    await expect(broken.withUser(user, (tx) => tx.credential.findMany({ select: { id: true } }))).rejects.toThrow(
      /no_such_role/,
    );
  });
});
