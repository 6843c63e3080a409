// Counts the SQL statements the server's own database clients send, one call
// per round trip, including BEGIN/COMMIT and better-auth's queries (not
// migrations): the driver-level view of test/perf/round-trips.test.ts. Plugged
// in through openDatabase's `instrument` option.
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import type { Instrumentation } from '../../src/db/database.ts';

export function countStatements(onQuery: (sql: string) => void): Instrumentation {
  return {
    // Every statement, pooled or in a transaction, goes through some pool
    // client's query(): wrapping each client as it connects sees them all.
    pgConnection(client: pg.PoolClient) {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      client.query = ((...args: unknown[]) => {
        const first = args[0] as string | { text?: string };
        onQuery(typeof first === 'string' ? first : (first.text ?? ''));
        return query(...args);
      }) as typeof client.query;
    },
    // PGlite sends each statement as one Query ('Q', e.g. its own
    // BEGIN/COMMIT) or one Parse ('P', a parameterised query) message through
    // execProtocolStream: counting those counts statements as above.
    pglite(db: PGlite) {
      const send = db.execProtocolStream.bind(db);
      const text = new TextDecoder();
      const cstring = (bytes: Uint8Array, at: number) => text.decode(bytes.subarray(at, bytes.indexOf(0, at)));
      db.execProtocolStream = (message, options) => {
        const type = String.fromCharCode(message[0] ?? 0);
        // Layout: type (1 byte), length (4), then for Parse the statement name before the SQL.
        if (type === 'Q') onQuery(cstring(message, 5));
        else if (type === 'P') onQuery(cstring(message, message.indexOf(0, 5) + 1));
        return send(message, options);
      };
    },
  };
}
