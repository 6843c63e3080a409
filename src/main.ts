// Process entry: read configuration, start tracing if asked, open the
// database, serve, and shut down cleanly on SIGTERM/SIGINT (stop accepting,
// finish in-flight requests, close the pool, flush spans, exit 0).
//
// Only configuration and the logger are imported up front: OpenTelemetry has
// to patch http and pg before they are first loaded, so the rest of the app
// is imported once tracing is running (and without tracing, nothing of
// OpenTelemetry is loaded at all).
import { ConfigError, forListeningPort, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';

/** In-flight requests get this long to finish after a shutdown signal. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  let config: Awaited<ReturnType<typeof loadConfig>>;
  try {
    config = await loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const tracing = config.tracing
    ? await (await import('./telemetry/tracing.ts')).startTracing(config.tracing, logger)
    : undefined;

  const [{ default: http }, { openDatabase }, { createApp }, { createTelemetry }] = await Promise.all([
    import('node:http'),
    import('./db/database.ts'),
    import('./server.ts'),
    import('./telemetry/telemetry.ts'),
  ]);
  const db = await openDatabase(config.database, {
    migrate: config.migrateOnStart,
    logger,
    instrument: tracing?.hooks.database,
  });
  const metrics = config.metrics
    ? (await import('./telemetry/metrics.ts')).createMetrics({ connections: () => db.connections() })
    : undefined;
  const telemetry = createTelemetry({ metrics, tracing: tracing?.hooks });

  // Bound first so the app knows its real port (PORT=0); nothing is read
  // from the socket before the handler is in place, in the same tick.
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const { handler } = createApp({ config: forListeningPort(config, port), db, logger, telemetry });
  server.on('request', tracing ? tracing.hooks.serveHttp(handler) : handler);

  let metricsServer: { port: number; close(): Promise<void> } | undefined;
  if (metrics && config.metrics) {
    const { startMetricsServer } = await import('./telemetry/metrics-server.ts');
    metricsServer = await startMetricsServer(metrics.registry, config.host, config.metrics.port);
    logger.info({ port: metricsServer.port }, `metrics on http://localhost:${metricsServer.port}/metrics`);
  }
  logger.info(
    { port, database: db.kind, tracing: config.tracing?.protocol ?? 'off' },
    `listening on http://localhost:${port}`,
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

main().catch((error: unknown) => {
  process.stderr.write(`fatal: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
