// OpenTelemetry traces, started by main.ts before the rest of the app is
// imported, and only when an OTLP endpoint is configured. The Node SDK reads
// the standard variables itself (OTEL_EXPORTER_OTLP_ENDPOINT / _HEADERS /
// _TIMEOUT, OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*...);
// we choose the OTLP/HTTP exporter OTEL_EXPORTER_OTLP_PROTOCOL names (the
// SDK would too) so that every span passes span-redaction.ts on its way out.
//
// Sampling is decided once per request, where it comes in (http-span.ts):
// an unsampled request makes no span and no attribute anywhere. A sampled
// one gets: the HTTP server span (named by route, routes.ts), the GraphQL
// operation with parse/validate (when not served from yoga's cache) and
// execute (spans.ts), each SQL statement (pg instrumentation on PostgreSQL,
// spans.ts on PGlite: statement text, never the parameter values),
// better-auth's own, each broker call and each engine request.
import { register as registerImportHooks } from 'import-in-the-middle/register-hooks.mjs';
import type { TracingConfig } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import type { TracingHooks } from './telemetry.ts';

export interface Tracing {
  hooks: TracingHooks;
  /** Ends the SDK, flushing the spans still buffered. */
  shutdown(): Promise<void>;
}

export async function startTracing(config: TracingConfig, logger: Logger): Promise<Tracing> {
  // The app runs as ES modules: import-in-the-middle lets the instrumentations
  // patch pg when it is imported. Only those modules are wrapped,
  // in-thread (module.registerHooks), so the rest of the app loads untouched.
  registerImportHooks({ include: ['pg', 'pg-pool'] });
  const [
    { NodeSDK },
    { PgInstrumentation },
    { OTLPTraceExporter },
    { RedactingSpanExporter },
    { createHttpTracing },
    { createBrokerSpan, createEngineSpan, instrumentPglite, useGraphQLTracing },
  ] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-pg'),
    config.protocol === 'http/json'
      ? import('@opentelemetry/exporter-trace-otlp-http')
      : import('@opentelemetry/exporter-trace-otlp-proto'),
    import('./span-redaction.ts'),
    import('./http-span.ts'),
    import('./spans.ts'),
  ]);

  const sdk = new NodeSDK({
    serviceName: config.serviceName,
    traceExporter: new RedactingSpanExporter(new OTLPTraceExporter()),
    // Traces only: Prometheus has the metrics, pino the logs.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new PgInstrumentation({
        enhancedDatabaseReporting: false,
        // Connection spans say nothing useful per request; queries are the point.
        ignoreConnectSpans: true,
        // An unsampled request runs with no span in its context (http-span.ts):
        // this is what makes pg skip its statements entirely. Statements
        // outside any request (migrations, the pool's) make no span either.
        requireParentSpan: true,
      }),
    ],
  });
  sdk.start();
  logger.info({ protocol: config.protocol, serviceName: config.serviceName }, 'tracing on (OTLP/HTTP)');

  return {
    hooks: {
      serveHttp: createHttpTracing(),
      graphqlPlugin: useGraphQLTracing(),
      brokerSpan: createBrokerSpan(),
      engineSpan: createEngineSpan(),
      database: { pglite: instrumentPglite },
    },
    shutdown: () => sdk.shutdown(),
  };
}
