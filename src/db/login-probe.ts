// One login to a PostgreSQL server and nothing else, on a connection of its
// own: the start-up check that names an unreachable database by its variable
// (src/startup/database-reach.ts) runs it before the migrations and the pools.
import pg from 'pg';

/** Logs in through `url` and closes at once; the error that stopped it, or undefined. */
export async function loginFailure(url: string, timeoutMs: number): Promise<unknown> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  // A connection that fails later emits 'error': it is reported by connect().
  client.on('error', () => {});
  try {
    await client.connect();
    return undefined;
  } catch (error) {
    return error ?? new Error('login failed');
  } finally {
    await client.end().catch(() => {});
  }
}
