// Runs the app inside the test process: createApp (src/server.ts, the same
// composition src/main.ts serves) on an http server on port 0, on a fresh
// test database. Everything a client meets is as in production: real
// database, real HTTP, the same configuration defaults as a spawned server
// (NODE_ENV=development, LOG_LEVEL=info); only the process is shared, which
// saves a Node start-up and a module load per file. Tests that must observe
// internals (the SQL sent) use it too. Where the process itself is the point
// (signals, its whole output, the README's commands), use server.ts.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config/load.ts';
import { type Database, type OpenOptions, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { createApp } from '../../src/server.ts';
import { createTestDatabase, type TestDatabase } from './databases.ts';
import { testSecrets } from './server.ts';
import { forSuite } from './suite-resource.ts';

export interface InProcessServer {
  url: string;
  /** The app's open database (its pools or PGlite instance). */
  db: Database;
  testDb: TestDatabase;
  /** Every line the app logged (pino JSON), in order. */
  logs: string[];
  /** Stops the server, closes the pools and drops the database (unless it was given). */
  close(): Promise<void>;
}

export interface InProcessOptions {
  instrument?: OpenOptions['instrument'];
  env?: Record<string, string>;
  /** Another instance's database (PostgreSQL only), left in place on close. */
  database?: TestDatabase;
}

export async function startInProcess(options: InProcessOptions = {}): Promise<InProcessServer> {
  const testDb = options.database ?? (await createTestDatabase());
  // Listen first: better-auth's base URL (and so the trusted origin) needs the port.
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const config = await loadConfig({
    NODE_ENV: 'development',
    PORT: String(port),
    LOG_LEVEL: 'info',
    ...testSecrets,
    ...testDb.env,
    ...options.env,
  });
  const logs: string[] = [];
  // pino writes each line with one synchronous write() call to its destination.
  const logger = createLogger(config.logLevel, { write: (line: string) => logs.push(line.trimEnd()) });
  let db: Database;
  try {
    db = await openDatabase(config.database, { migrate: true, logger, instrument: options.instrument });
  } catch (error) {
    server.close();
    throw error;
  }
  handler = createApp({ config, db, logger }).handler;
  let closed = false;
  return {
    url: `http://localhost:${port}`,
    db,
    testDb,
    logs,
    close: async () => {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await db.close();
      if (!options.database) await testDb.drop();
    },
  };
}

/**
 * An in-process server for the enclosing describe block (or file), started
 * in beforeAll and closed (its database dropped) in afterAll, like
 * server.ts's useServer. The handle forwards to the running server.
 */
export function useInProcessServer(options: InProcessOptions = {}): InProcessServer {
  return forSuite(() => startInProcess(options));
}
