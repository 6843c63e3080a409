// Metrics and spans of engine requests (docs/operations.md, docs/engines.md):
// engine_requests_total{client,outcome} with bounded labels, an
// engine.request span with safe attributes only, and fixed route names.
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { suppressTracing } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { routeName } from '../../src/telemetry/routes.ts';
import { createBrokerSpan, createEngineSpan } from '../../src/telemetry/spans.ts';
import { createTelemetry } from '../../src/telemetry/telemetry.ts';

describe('engine route names', () => {
  it.each([
    ['/engine/v1/credentials/123e4567-e89b-12d3-a456-426614174000/alpaca/v2/orders?symbols=AAPL', '/engine/v1'],
    ['/engine/v1/oauth/token', '/engine/v1'],
    ['/engine/v1/grants', '/engine/v1'],
    ['/.well-known/oauth-authorization-server', '/.well-known/oauth-authorization-server'],
    ['/engine/v2/x', 'other'],
    ['/engine', 'other'],
  ])('%s is %s', (url, name) => {
    expect(routeName(url)).toBe(name);
  });
});

describe('engine requests', () => {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
  trace.setGlobalTracerProvider(provider);
  // What the SDK installs in a real process: context.with reaches the awaited work.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  afterAll(() => {
    trace.disable();
    context.disable();
  });

  const metrics = createMetrics({ connections: () => ({ idle: 1, active: 0, waiting: 0 }) });
  const telemetry = createTelemetry({
    metrics,
    tracing: {
      serveHttp: (handler) => handler,
      graphqlPlugin: {},
      brokerSpan: createBrokerSpan(),
      engineSpan: createEngineSpan(),
      database: {},
    },
  });
  const series = async () =>
    (await metrics.registry.getSingleMetric('engine_requests_total')?.get())?.values.map((v) => [
      v.labels.client,
      v.labels.outcome,
      v.value,
    ]);

  it('counts each by client and outcome; no client before a token named one; an unfinished one as an error', async () => {
    await telemetry.engineRequest(async (observed) => {
      observed.client('ec_abc');
      observed.request('POST /v2/orders');
      await telemetry.brokerRequest('paper', async (broker) => {
        broker.httpStatus(200);
        broker.outcome('forwarded');
      });
      observed.status(200);
      observed.outcome('forwarded');
    });
    await telemetry.engineRequest(async (observed) => {
      observed.status(401);
      observed.outcome('UNAUTHENTICATED');
    });
    await telemetry.engineRequest(async (observed) => {
      observed.client('ec_abc');
      observed.outcome('made up?');
    });
    await expect(
      telemetry.engineRequest(async (observed) => {
        observed.client('ec_abc');
        throw new Error('eat_secret-token in a message');
      }),
    ).rejects.toThrow();
    expect(await series()).toEqual([
      ['ec_abc', 'forwarded', 1],
      ['none', 'UNAUTHENTICATED', 1],
      ['ec_abc', 'ERROR', 1],
      ['ec_abc', 'INTERNAL_SERVER_ERROR', 1],
    ]);
    const broker = await metrics.registry.getSingleMetric('broker_requests_total')?.get();
    expect(
      broker?.values.find((v) => v.labels.environment === 'paper' && v.labels.outcome === 'forwarded')?.value,
    ).toBe(1);
  });

  it('keeps the client label bounded', async () => {
    for (let i = 0; i < 210; i++) {
      await telemetry.engineRequest(async (observed) => {
        observed.client(`ec_many${i}`);
        observed.outcome('ok');
      });
    }
    await telemetry.engineRequest(async (observed) => {
      observed.client('not a client id!');
      observed.outcome('ok');
    });
    const clients = new Set((await series())?.map(([client]) => client));
    expect(clients.size).toBeLessThanOrEqual(202);
    expect(clients.has('other')).toBe(true);
    expect(clients.has('not a client id!')).toBe(false);
  });

  it('traces each as engine.request with the client, template, status and outcome only', () => {
    const spans = memory.getFinishedSpans();
    const engine = spans.filter((s) => s.name === 'engine.request');
    expect(engine[0]?.attributes).toEqual({
      'engine.client_id': 'ec_abc',
      'engine.request': 'POST /v2/orders',
      'http.response.status_code': 200,
      'engine.outcome': 'forwarded',
    });
    // (Nesting needs the SDK's context manager: test/engine/process.test.ts checks it in a real process.)
    expect(spans.find((s) => s.name === 'broker.request')?.attributes['broker.outcome']).toBe('forwarded');
    expect(engine[1]?.attributes).toEqual({ 'http.response.status_code': 401, 'engine.outcome': 'UNAUTHENTICATED' });
    expect(engine[3]?.status.code).toBe(2);
    expect(JSON.stringify(spans.map((s) => [s.attributes, s.events]))).not.toContain('eat_secret');
  });

  it('makes no span for an unsampled request (the suppressTracing context http-span.ts gives it)', async () => {
    const before = memory.getFinishedSpans().length;
    const forwarded = async () =>
      (await metrics.registry.getSingleMetric('broker_requests_total')?.get())?.values.find(
        (v) => v.labels.environment === 'paper' && v.labels.outcome === 'forwarded',
      )?.value;
    const counted = await forwarded();
    await context.with(suppressTracing(ROOT_CONTEXT), () =>
      telemetry.engineRequest(async (observed) => {
        observed.client('ec_unsampled');
        await telemetry.brokerRequest('paper', async (broker) => {
          broker.httpStatus(200);
          broker.outcome('forwarded');
        });
        observed.status(200);
        observed.outcome('forwarded');
      }),
    );
    expect(memory.getFinishedSpans().length).toBe(before);
    // Still counted: sampling is about traces, not metrics.
    expect(await forwarded()).toBe((counted ?? 0) + 1);
  });
});
