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
// (In src/db: only database code opens connections, test/unit/architecture.test.ts;
// src/startup/database-checks.ts turns the answer into a refusal to start.)
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DatabaseOptions } from './database.ts';

/** SQLSTATEs of a named statement that does not survive the connection. */
const LOST_STATEMENT = new Set(['42P05', '26000']);

/** Why named prepared statements do not survive the requests' connections; null when they do (or are off). */
export async function preparedStatementsLost(database: DatabaseOptions): Promise<string | null> {
  if (database.kind !== 'postgres' || !database.preparedStatements) return null;
  const url = database.requestUrl ?? database.url;
  // Unique per start: servers sharing a pooler must not see each other's name.
  const name = `bca_startup_${randomBytes(6).toString('hex')}`;
  const statement = { name, text: 'SELECT 1 AS one' };
  const clients = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })] as const;
  try {
    await Promise.all(clients.map((c) => c.connect()));
    for (const client of [...clients, ...clients]) await client.query(statement);
    return null;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code && LOST_STATEMENT.has(code)) return (error as Error).message;
    throw error;
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}
