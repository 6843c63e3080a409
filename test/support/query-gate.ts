// Holds one database answer back: the first statement matching a pattern
// runs, and its result reaches the caller only once the test releases it. How
// a test keeps a request "in the middle" of its queries while others run
// (e.g. a session lookup across a sign-out). Plugged in through openDatabase's
// `instrument` option, like statement-counter.ts; the statement has finished
// when it is held, so nothing is locked meanwhile (PGlite's one backend too).
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import type { Instrumentation } from '../../src/db/database.ts';

export interface QueryGate {
  instrument: Instrumentation;
  /** Holds the next statement whose SQL matches `pattern`; resolves once one ran and is held. */
  arm(pattern: RegExp): Promise<void>;
  /** Lets the held answer through. */
  release(): void;
}

export function queryGate(): QueryGate {
  let armed: { pattern: RegExp; held: () => void } | undefined;
  let release = () => {};
  /** For the statement to hold, once answered: says it is held, then waits for release. Else undefined. */
  const holdFor = (sql: string): (() => Promise<void>) | undefined => {
    const gate = armed;
    if (!gate?.pattern.test(sql)) return undefined;
    armed = undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    return () => {
      gate.held();
      return released;
    };
  };
  const sqlOf = (first: unknown) => (typeof first === 'string' ? first : ((first as { text?: string }).text ?? ''));
  return {
    instrument: {
      // pg.Pool#query (statements outside a transaction) calls the client with
      // a callback; transactions call it promise-style.
      pgConnection(client: pg.PoolClient) {
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        client.query = ((...args: unknown[]) => {
          const held = holdFor(sqlOf(args[0]));
          if (!held) return query(...args);
          const callback = args.at(-1);
          if (typeof callback === 'function') {
            args[args.length - 1] = (...answer: unknown[]) => void held().then(() => callback(...answer));
            return query(...args);
          }
          return (query(...args) as Promise<unknown>).then(async (result) => {
            await held();
            return result;
          });
        }) as typeof client.query;
      },
      pglite(db: PGlite) {
        const query = db.query.bind(db);
        db.query = (async (...args: Parameters<typeof query>) => {
          const held = holdFor(args[0]);
          const result = await query(...args);
          await held?.();
          return result;
        }) as typeof db.query;
      },
    },
    arm: (pattern) =>
      new Promise<void>((held) => {
        armed = { pattern, held };
      }),
    release: () => release(),
  };
}
