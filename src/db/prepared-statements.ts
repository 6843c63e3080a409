// DATABASE_PREPARED_STATEMENTS=true names statements so each connection
// prepares them once. Behind a transaction-pooling PgBouncer before 1.21
// (or one without max_prepared_statements) a connection's statements land
// on whichever server connection is free, where the name is unknown or
// already taken: nearly every request fails while /ready answers. So before
// listening, a named statement is prepared and run twice on each of two
// connections to the requests' URL, interleaved (A, B, A, B) as pool
// connections are. Directly on PostgreSQL each connection keeps its own
// session and all four run; through such a pooler, B's prepare finds the name
// taken on A's server connection (42P05) or a run finds it missing (26000).
// (In src/db: only database code opens connections, test/unit/architecture.test.ts.)
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type Config, invalid } from '../config.ts';

/** SQLSTATEs of a named statement that does not survive the connection. */
const LOST_STATEMENT = new Set(['42P05', '26000']);

export async function checkPreparedStatements(database: Config['database']): Promise<void> {
  if (database.kind !== 'postgres' || !database.preparedStatements) return;
  const url = database.requestUrl ?? database.url;
  // Unique per start: servers sharing a pooler must not see each other's name.
  const name = `bca_startup_${randomBytes(6).toString('hex')}`;
  const statement = { name, text: 'SELECT 1 AS one' };
  const clients = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })] as const;
  try {
    await Promise.all(clients.map((c) => c.connect()));
    for (const client of [...clients, ...clients]) await client.query(statement);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code && LOST_STATEMENT.has(code)) {
      throw invalid([
        {
          variable: 'DATABASE_PREPARED_STATEMENTS',
          message:
            `named prepared statements do not survive this connection (${(error as Error).message}): ` +
            'a transaction-pooling PgBouncer before 1.21, or without max_prepared_statements, cannot carry them; ' +
            'set it to false (or give PgBouncer max_prepared_statements)',
        },
      ]);
    }
    throw error;
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}
