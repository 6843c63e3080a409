// Prometheus metrics with prom-client, on a registry of our own. Loaded only
// when METRICS_PORT is set (main.ts). Every label comes from a fixed set: the
// route names and methods of routes.ts, status codes, error codes the server
// defines, and GraphQL operation names (identifiers by the GraphQL grammar,
// capped in number, see operationLabel).
//
// graphql_operations_total is a small yoga plugin rather than
// @graphql-yoga/plugin-prometheus: that plugin counts requests when execution
// ends, without the result, so it cannot give the `outcome` label (it counts
// errors in another series, per error and phase), and it hooks every phase.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import client from 'prom-client';
import type { PoolConnections } from '../db/database.ts';
import { methodName, routeName } from './routes.ts';
import {
  BROKER_ENVIRONMENT_LABELS,
  BROKER_OUTCOMES,
  type BrokerEnvironmentLabel,
  type BrokerOutcome,
  type EngineCallRecord,
  type MetricsHooks,
} from './telemetry.ts';

export interface MetricsDeps {
  /** Read at each scrape (the real pool, see Database.connections). */
  connections: () => PoolConnections;
}

export interface Metrics extends MetricsHooks {
  registry: client.Registry;
}

/** Distinct operation names kept as label values; later new ones count as `other`. */
const MAX_OPERATION_NAMES = 200;
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
/** A guardrail rule's name (a fixed set: the guardrail fields, orderClass, symbol, marketData). */
const GUARDRAIL_RULE = /^[a-zA-Z]{1,32}$/;

/** Distinct engine client ids kept as label values (the operator registers them; this only bounds a mistake). */
const MAX_ENGINE_CLIENTS = 200;
const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Seconds; from a cached probe (~1 ms) to the 15 s transaction limit. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15];

export function createMetrics(deps: MetricsDeps): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const httpLabels = ['method', 'route', 'status'] as const;
  const httpRequests = new client.Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered by the API listener, by method, route name and status.',
    labelNames: httpLabels,
    registers,
  });
  const httpDuration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from receiving an HTTP request to the end of its response, by method, route name and status.',
    labelNames: httpLabels,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const graphqlOperations = new client.Counter({
    name: 'graphql_operations_total',
    help: 'GraphQL operations by operation name and outcome (ok, or the first error code).',
    labelNames: ['operation', 'outcome'] as const,
    registers,
  });
  new client.Gauge({
    name: 'db_pool_connections',
    help: 'Database connections by state: idle and active (open), waiting (requests queued for one).',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const { idle, active, waiting } = deps.connections();
      this.set({ state: 'idle' }, idle);
      this.set({ state: 'active' }, active);
      this.set({ state: 'waiting' }, waiting);
    },
  });
  const brokerRequests = new client.Counter({
    name: 'broker_requests_total',
    help: 'Requests sent to the broker (verifications and forwarded engine requests), by environment and outcome.',
    labelNames: ['environment', 'outcome'] as const,
    registers,
  });
  // Every series exists from the start, so rate() and alerts see 0, not nothing.
  for (const environment of BROKER_ENVIRONMENT_LABELS) {
    for (const outcome of BROKER_OUTCOMES) brokerRequests.inc({ environment, outcome }, 0);
  }

  const engineRequests = new client.Counter({
    name: 'engine_requests_total',
    help: 'Engine API requests by client id and outcome (forwarded, ok for the grant list, or the error code answered).',
    labelNames: ['client', 'outcome'] as const,
    registers,
  });
  const guardrailRefusals = new client.Counter({
    name: 'engine_guardrail_refusals_total',
    help: "Engine requests refused by a grant's guardrails, by client id and rule (marketData: a fact could not be read).",
    labelNames: ['client', 'rule'] as const,
    registers,
  });
  const engineClients = new Set<string>();
  /** The client label: its id (ids are the operator's, few); `none` before a token named one. */
  const clientLabel = (clientId: string | undefined): string => {
    if (clientId === undefined) return 'none';
    if (engineClients.has(clientId)) return clientId;
    if (engineClients.size >= MAX_ENGINE_CLIENTS || !CLIENT_ID.test(clientId)) return 'other';
    engineClients.add(clientId);
    return clientId;
  };

  const operationNames = new Set<string>();
  const operationLabel = (name: string): string => {
    if (operationNames.has(name)) return name;
    if (operationNames.size >= MAX_OPERATION_NAMES) return 'other';
    operationNames.add(name);
    return name;
  };
  /** The operation each request runs, once its document is known. */
  const operations = new WeakMap<Request, string>();

  const graphqlPlugin: Plugin<{ request: Request; params?: { operationName?: string | null } }> = {
    onValidate({ context, params }) {
      const operation = getOperationAST(params.documentAST, context.params?.operationName);
      operations.set(context.request, operationLabel(operation?.name?.value ?? 'anonymous'));
    },
    onResultProcess({ request, result }) {
      if (Symbol.asyncIterator in result) return;
      const operation = operations.get(request) ?? 'unknown';
      for (const one of Array.isArray(result) ? result : [result]) {
        const code = one.errors?.[0]?.extensions?.code;
        const outcome = one.errors?.length ? (typeof code === 'string' && CODE.test(code) ? code : 'ERROR') : 'ok';
        graphqlOperations.inc({ operation, outcome });
      }
    },
  };

  return {
    registry,
    observeHttp(req: IncomingMessage, res: ServerResponse) {
      const started = performance.now();
      res.once('close', () => {
        // 499 (as nginx logs it): the client went away before an answer was sent.
        const status = res.headersSent ? String(res.statusCode) : '499';
        const labels = { method: methodName(req.method), route: routeName(req.url), status };
        httpRequests.inc(labels);
        httpDuration.observe(labels, (performance.now() - started) / 1000);
      });
    },
    graphqlPlugin: graphqlPlugin as Plugin,
    countBrokerRequest(environment: BrokerEnvironmentLabel, outcome: BrokerOutcome) {
      brokerRequests.inc({ environment, outcome });
    },
    countEngineRequest(record: EngineCallRecord) {
      const known = record.outcome === 'forwarded' || record.outcome === 'ok' || CODE.test(record.outcome ?? '');
      const outcome = known ? (record.outcome as string) : 'ERROR';
      engineRequests.inc({ client: clientLabel(record.clientId), outcome });
      if (record.guardrailRule) {
        const rule = GUARDRAIL_RULE.test(record.guardrailRule) ? record.guardrailRule : 'other';
        guardrailRefusals.inc({ client: clientLabel(record.clientId), rule });
      }
    },
  };
}
