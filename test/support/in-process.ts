// Runs the app inside the test process (createApp on an http server on port
// 0), for tests that must observe the server's internals, such as the SQL it
// sends. Everything else is as in production: real database, real HTTP.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config.ts';
import { type Database, type OpenOptions, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { createApp } from '../../src/server.ts';
import { createTestDatabase, type TestDatabase } from './databases.ts';
import { testSecrets } from './server.ts';

export interface InProcessServer {
  url: string;
  db: Database;
  testDb: TestDatabase;
  /** Stops the server, closes the pools and drops the database. */
  close(): Promise<void>;
}

export async function startInProcess(
  options: {
    instrument?: OpenOptions['instrument'];
    env?: Record<string, string>;
    /** Another instance's database (PostgreSQL only), left in place on close. */
    database?: TestDatabase;
  } = {},
): Promise<InProcessServer> {
  const testDb = options.database ?? (await createTestDatabase());
  // Listen first: better-auth's base URL (and so the trusted origin) needs the port.
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const config = await loadConfig({
    NODE_ENV: 'development',
    PORT: String(port),
    LOG_LEVEL: 'silent',
    ...testSecrets,
    ...testDb.env,
    ...options.env,
  });
  const logger = createLogger(config.logLevel);
  const db = await openDatabase(config.database, { migrate: true, logger, instrument: options.instrument });
  handler = createApp({ config, db, logger }).handler;
  return {
    url: `http://localhost:${port}`,
    db,
    testDb,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await db.close();
      if (!options.database) await testDb.drop();
    },
  };
}
