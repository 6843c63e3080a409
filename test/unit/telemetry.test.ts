// The pure parts of src/telemetry: route names, span redaction, and the
// broker helper (counter and span), without a server.
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { methodName, routeName } from '../../src/telemetry/routes.ts';
import {
  RedactingSpanExporter,
  redactAttributes,
  redactSql,
  withoutQuery,
} from '../../src/telemetry/span-redaction.ts';
import { createBrokerSpan, createEngineSpan } from '../../src/telemetry/spans.ts';
import { createTelemetry } from '../../src/telemetry/telemetry.ts';

describe('route names', () => {
  it.each([
    ['/graphql', '/graphql'],
    ['/graphql?query=%7B%7D&variables=secret', '/graphql'],
    ['/api/auth/sign-in/email', '/api/auth'],
    ['/health', '/health'],
    ['/ready?x=1', '/ready'],
    ['/login', '/login'],
    ['/', '/'],
    ['/x/../graphql', '/graphql'],
    ['/accounts/123e4567-e89b-12d3-a456-426614174000', 'other'],
    ['/api/authx', 'other'],
  ])('%s is %s', (url, name) => {
    expect(routeName(url)).toBe(name);
  });

  it('keeps made-up methods out of the labels', () => {
    expect(methodName('POST')).toBe('POST');
    expect(methodName('BREW')).toBe('other');
  });
});

describe('span redaction', () => {
  it('replaces every quoted literal of a statement, and keeps placeholders and comments', () => {
    expect(
      redactSql(
        "BEGIN; SELECT set_config('app.current_user_id', 'u''1', true), set_config('role', E'app\\\\user', true)",
      ),
    ).toBe('BEGIN; SELECT set_config(?, ?, true), set_config(?, ?, true)');
    expect(redactSql('SELECT * FROM "t" WHERE id = $1 -- the user\'s row')).toBe(
      'SELECT * FROM "t" WHERE id = $1 -- the user\'s row',
    );
  });

  it('drops query strings, headers, values, documents and error messages', () => {
    expect(withoutQuery('http://h/graphql?query=x#y')).toBe('http://h/graphql');
    expect(
      redactAttributes({
        'url.full': 'https://broker.example/v2/account?key=secret',
        'url.path': '/v2/account',
        'url.query': 'key=secret',
        'http.request.header.authorization': ['Bearer t'],
        'http.response.header.set-cookie': ['s=1'],
        'db.query.text': "SELECT 'secret'",
        'db.postgresql.values': ['secret'],
        'graphql.document': '{ x(a: "secret") }',
        'exception.message': 'invalid input "secret"',
        'exception.type': 'Error',
      }),
    ).toEqual({
      'url.full': 'https://broker.example/v2/account',
      'url.path': '/v2/account',
      'db.query.text': 'SELECT ?',
      'exception.type': 'Error',
    });
  });

  it('exports spans without status messages or exception messages', () => {
    const memory = new InMemorySpanExporter();
    const provider = new TracerProvider({
      spanProcessors: [new SimpleSpanProcessor({ exporter: new RedactingSpanExporter(memory) })],
    });
    const span = provider.getTracer('t').startSpan('pg.query', { attributes: { 'db.query.text': "SELECT 'x'" } });
    span.recordException(new Error('duplicate key value "secret"'));
    span.setStatus({ code: 2, message: 'invalid input syntax for type uuid: "secret"' });
    span.end();
    const [exported] = memory.getFinishedSpans();
    expect(exported?.status).toEqual({ code: 2 });
    expect(exported?.attributes).toEqual({ 'db.query.text': 'SELECT ?' });
    expect(JSON.stringify(exported?.events)).not.toContain('secret');
    expect(exported?.events[0]?.attributes?.['exception.type']).toBe('Error');
  });
});

describe('broker requests', () => {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
  trace.setGlobalTracerProvider(provider);
  afterAll(() => trace.disable());

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
  const count = async (environment: string, outcome: string) => {
    const metric = await metrics.registry.getSingleMetric('broker_requests_total')?.get();
    return metric?.values.find((v) => v.labels.environment === environment && v.labels.outcome === outcome)?.value;
  };

  it('counts each call by environment and outcome, and a call that throws as unreachable', async () => {
    const answer = await telemetry.brokerRequest('paper', async (observed) => {
      observed.httpStatus(200);
      observed.outcome('verified');
      return 'account';
    });
    expect(answer).toBe('account');
    await telemetry.brokerRequest('live', async (observed) => {
      observed.httpStatus(401);
      observed.outcome('invalid');
    });
    await expect(
      telemetry.brokerRequest('live', async () => {
        throw new Error('connect ECONNREFUSED https://api.example/v2/account?key=secret');
      }),
    ).rejects.toThrow('ECONNREFUSED');
    expect(await count('paper', 'verified')).toBe(1);
    expect(await count('live', 'invalid')).toBe(1);
    expect(await count('live', 'unreachable')).toBe(1);
    expect(await count('paper', 'unreachable')).toBe(0);
  });

  it('traces each call as broker.request with the environment, HTTP status and outcome only', () => {
    const spans = memory.getFinishedSpans().filter((s) => s.name === 'broker.request');
    expect(spans.map((s) => s.attributes)).toEqual([
      { 'broker.environment': 'paper', 'http.response.status_code': 200, 'broker.outcome': 'verified' },
      { 'broker.environment': 'live', 'http.response.status_code': 401, 'broker.outcome': 'invalid' },
      { 'broker.environment': 'live', 'broker.outcome': 'unreachable' },
    ]);
    expect(spans[2]?.status.code).toBe(2);
    expect(spans.flatMap((s) => s.events)).toEqual([]);
  });
});
