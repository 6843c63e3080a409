// Process entry: read configuration, start tracing if asked, open the
// database, run the start-up checks (src/startup: a server that cannot serve
// what it stores does not start), serve, and shut down cleanly on SIGTERM/SIGINT (stop accepting,
// finish in-flight requests, close the pool, flush spans, exit 0).
//
// Only configuration and the logger are imported up front: OpenTelemetry has
// to patch http and pg before they are first loaded, so the rest of the app
// is imported once tracing is running (and without tracing, nothing of
// OpenTelemetry is loaded at all).
import type { AddressInfo } from 'node:net';
import { loadConfig } from './config/load.ts';
import { forListeningPort } from './config/origins.ts';
import { createLogger } from './logger.ts';
import { type CheckTimes, checkBeforeDatabase, logCheckTimes, timed } from './startup/checks.ts';
import { claimDataDir } from './startup/data-dir.ts';
import { exitCodeFor, failureLine } from './startup/failure.ts';
import { listeningAt, listenRefusal } from './startup/listen-address.ts';

/** In-flight requests get this long to finish after a shutdown signal. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  // The embedded database's DATA_DIR is this process's alone (or the start stops here).
  const config = await loadConfig(process.env, undefined, 'server', { claimDataDir });
  const logger = createLogger(config.logLevel);
  const checkTimes: CheckTimes = {};
  await checkBeforeDatabase(config, checkTimes);
  const tracing = config.tracing
    ? await (await import('./telemetry/tracing.ts')).startTracing(config.tracing, logger)
    : undefined;

  const [{ default: http }, { openDatabase }, { createApp }, { createTelemetry }, { checkDatabase }] =
    await Promise.all([
      import('node:http'),
      import('./db/database.ts'),
      import('./server.ts'),
      import('./telemetry/telemetry.ts'),
      import('./startup/database-checks.ts'),
    ]);
  // Before the migrations: an unreachable database is named by its variable (exit 69).
  const { checkDatabaseReachable } = await import('./startup/database-reach.ts');
  await timed(checkTimes, 'databaseReach', () => checkDatabaseReachable(config.database));
  // The command-line tasks' way in while this server has the embedded database's files (src/admin).
  const admin =
    config.database.kind === 'pglite'
      ? await (await import('./admin/endpoint.ts')).startAdminEndpoint(config.dataDir, logger)
      : undefined;
  const db = await openDatabase(config.database, {
    migrate: config.migrateOnStart,
    logger,
    instrument: tracing?.hooks.database,
  });
  try {
    await checkDatabase(config, db, checkTimes);
  } catch (error) {
    await db.close();
    throw error;
  }
  logCheckTimes(logger, checkTimes);
  if (admin) {
    const [{ databaseOperations }, { Keyring }] = await Promise.all([
      import('./admin/operations.ts'),
      import('./crypto/keyring.ts'),
    ]);
    admin.serve(databaseOperations(db, new Keyring(config.encryption.current, config.encryption.previous), 'server'));
  }
  const metrics = config.metrics
    ? (await import('./telemetry/metrics.ts')).createMetrics({ connections: () => db.connections() })
    : undefined;
  const telemetry = createTelemetry({ metrics, tracing: tracing?.hooks });

  // The metrics listener first, then the API's: a port that cannot be bound
  // stops the start before the API answers anyone.
  let metricsServer: { port: number; address: string; close(): Promise<void> } | undefined;
  // Bound first so the app knows its real port (PORT=0); nothing is read
  // from the socket before the handler is in place, in the same tick.
  const server = http.createServer();
  try {
    if (metrics && config.metrics) {
      const { startMetricsServer } = await import('./telemetry/metrics-server.ts');
      const metricsPort = config.metrics.port;
      metricsServer = await startMetricsServer(metrics.registry, config.host, metricsPort).catch((error) => {
        throw listenRefusal(error, config.host, metricsPort, 'METRICS_PORT') ?? error;
      });
      const { where } = listeningAt(metricsServer.address, metricsServer.port, '/metrics');
      logger.info({ port: metricsServer.port, address: metricsServer.address }, `metrics on ${where}`);
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(listenRefusal(error, config.host, config.port, 'PORT') ?? error),
      );
      server.listen(config.port, config.host, resolve);
    });
  } catch (error) {
    await metricsServer?.close();
    await db.close();
    throw error;
  }
  const bound = server.address() as AddressInfo;
  const port = bound.port;
  const { handler } = createApp({ config: forListeningPort(config, port), db, logger, telemetry });
  server.on('request', tracing ? tracing.hooks.serveHttp(handler) : handler);

  // The address bound, not the configured name: HOST=127.0.0.1 is not reachable as localhost over IPv6.
  const at = listeningAt(bound.address, port);
  logger.info(
    { port, address: bound.address, url: at.url, database: db.kind, tracing: config.tracing?.protocol ?? 'off' },
    `listening on ${at.where}`,
  );

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
    force.unref();
    server.close(async () => {
      await metricsServer?.close();
      await admin?.close();
      // The session revocation listener first, then the pools.
      await db.close();
      // Last, so the spans of the requests that just finished go out too.
      await tracing?.shutdown().catch((error: Error) => logger.warn({ err: error.message }, 'flushing spans failed'));
      logger.info('stopped');
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

// One line, never a stack trace (src/startup/failure.ts): exit 78 for
// configuration and 69 for an unreachable database, naming the variable; 1
// for an operation that failed.
main().catch((error: unknown) => {
  process.stderr.write(`${failureLine('start', error)}\n`);
  process.exit(exitCodeFor(error));
});
