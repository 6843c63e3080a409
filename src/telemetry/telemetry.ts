// What the rest of the app sees of metrics and traces: hooks that are absent
// (and cost nothing) when METRICS_PORT and the OTLP endpoint are unset. This
// module imports neither prom-client nor OpenTelemetry; main.ts loads
// metrics.ts and tracing.ts only when they are switched on.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import type { Instrumentation } from '../db/database.ts';

/** The broker environment as a metric label value (the domain's PAPER and LIVE, lower-cased). */
export type BrokerEnvironmentLabel = 'paper' | 'live';
export const BROKER_ENVIRONMENT_LABELS: readonly BrokerEnvironmentLabel[] = ['paper', 'live'];
/**
 * What one broker answer meant, a fixed set of label values: for a
 * verification (docs/verification.md) verified, invalid or unreachable; for
 * an engine request forwarded (docs/engines.md) forwarded (Alpaca answered, whatever
 * its status) or unreachable; for a read the guardrail checks need, read or
 * unreachable.
 */
export const BROKER_OUTCOMES = ['verified', 'invalid', 'unreachable', 'forwarded', 'read'] as const;
export type BrokerOutcome = (typeof BROKER_OUTCOMES)[number];

/** What the code calling the broker reports about one request. */
export interface BrokerCall {
  /** The HTTP status the broker answered (a span attribute). */
  httpStatus(status: number): void;
  /** What the answer meant; counted in broker_requests_total. Left unset when the call throws: unreachable. */
  outcome(outcome: BrokerOutcome): void;
}

/** A broker call in progress, as metrics.ts and tracing.ts read it once it ended. */
export interface BrokerCallRecord {
  environment: BrokerEnvironmentLabel;
  status?: number;
  outcome?: BrokerOutcome;
}

/** What the engine API reports about one of its requests (docs/engines.md). */
export interface EngineCall {
  /** The client its token authenticated. */
  client(clientId: string): void;
  /** The matched "METHOD /template" (never a path value or query). */
  request(request: string): void;
  status(status: number): void;
  /** `forwarded` (to Alpaca), `ok` (the grant list), or the error code answered (UNAUTHENTICATED, NOT_FOUND, ...). */
  outcome(outcome: string): void;
  /** The guardrail rule that refused the request (engine_guardrail_refusals_total). */
  refused(rule: string): void;
}

/** An engine request in progress, as metrics.ts and tracing.ts read it once it ended. */
export interface EngineCallRecord {
  clientId?: string;
  request?: string;
  status?: number;
  outcome?: string;
  guardrailRule?: string;
}

/** Provided by metrics.ts when METRICS_PORT is set. */
export interface MetricsHooks {
  observeHttp(req: IncomingMessage, res: ServerResponse): void;
  graphqlPlugin: Plugin;
  countBrokerRequest(environment: BrokerEnvironmentLabel, outcome: BrokerOutcome): void;
  countEngineRequest(record: EngineCallRecord): void;
}

/** Provided by tracing.ts when an OTLP endpoint is set. */
export interface TracingHooks {
  /** Wraps the main listener's handler: the sampling decision and the HTTP server span (http-span.ts). */
  serveHttp(handler: RequestListener): RequestListener;
  graphqlPlugin: Plugin;
  /** Handed to openDatabase: SQL spans on PGlite (pg has its own instrumentation). */
  database: Instrumentation;
  /** Runs `run` in a `broker.request` span that gets the record's safe fields when it ends. */
  brokerSpan<T>(record: BrokerCallRecord, run: () => Promise<T>): Promise<T>;
  /** Runs `run` in an `engine.request` span that gets the record's safe fields when it ends. */
  engineSpan<T>(record: EngineCallRecord, run: () => Promise<T>): Promise<T>;
}

export interface Telemetry {
  /** Starts observing one HTTP request of the main listener (undefined when metrics are off). */
  observeHttp: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  /** Yoga plugins, after the app's own (they see the RLS transaction inside the execute span). */
  graphqlPlugins: Plugin[];
  /**
   * One outbound broker request (one `GET /v2/account`): counted in
   * broker_requests_total{environment,outcome} and traced as `broker.request`
   * (environment, HTTP status and outcome only: no URL, no header, no key).
   */
  brokerRequest<T>(environment: BrokerEnvironmentLabel, call: (observed: BrokerCall) => Promise<T>): Promise<T>;
  /**
   * One request to the engine API: counted in engine_requests_total{client,
   * outcome} (and a guardrail refusal in engine_guardrail_refusals_total{client,
   * rule}) and traced as `engine.request` (client id, "METHOD /template",
   * status and outcome only: no token, key, path value or query).
   */
  engineRequest<T>(call: (observed: EngineCall) => Promise<T>): Promise<T>;
}

const ignored: BrokerCall = { httpStatus: () => {}, outcome: () => {} };
const ignoredEngine: EngineCall = {
  client: () => {},
  request: () => {},
  status: () => {},
  outcome: () => {},
  refused: () => {},
};

export function createTelemetry(parts: { metrics?: MetricsHooks; tracing?: TracingHooks } = {}): Telemetry {
  const { metrics, tracing } = parts;
  return {
    observeHttp: metrics?.observeHttp,
    graphqlPlugins: [...(metrics ? [metrics.graphqlPlugin] : []), ...(tracing ? [tracing.graphqlPlugin] : [])],
    brokerRequest:
      !metrics && !tracing
        ? (_environment, call) => call(ignored)
        : async (environment, call) => {
            const record: BrokerCallRecord = { environment };
            const observed: BrokerCall = {
              httpStatus: (status) => {
                record.status = status;
              },
              outcome: (outcome) => {
                record.outcome = outcome;
              },
            };
            const run = async () => {
              try {
                return await call(observed);
              } finally {
                record.outcome ??= 'unreachable';
                metrics?.countBrokerRequest(environment, record.outcome);
              }
            };
            return tracing ? tracing.brokerSpan(record, run) : run();
          },
    engineRequest:
      !metrics && !tracing
        ? (call) => call(ignoredEngine)
        : async (call) => {
            const record: EngineCallRecord = {};
            const observed: EngineCall = {
              client: (clientId) => {
                record.clientId = clientId;
              },
              request: (request) => {
                record.request = request;
              },
              status: (status) => {
                record.status = status;
              },
              outcome: (outcome) => {
                record.outcome = outcome;
              },
              refused: (rule) => {
                record.guardrailRule = rule;
              },
            };
            const run = async () => {
              try {
                return await call(observed);
              } finally {
                record.outcome ??= 'INTERNAL_SERVER_ERROR';
                metrics?.countEngineRequest(record);
              }
            };
            return tracing ? tracing.engineSpan(record, run) : run();
          },
  };
}

/** No metrics, no traces: what tests and tools that build the app in-process get. */
export const noTelemetry: Telemetry = createTelemetry();
