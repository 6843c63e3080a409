// OpenTelemetry traces from a real server process to a local OTLP/HTTP
// receiver (test/support/otlp-receiver.ts, a stand-in for a collector), in
// both protocols: the spans of one operation (HTTP, GraphQL, SQL), and no
// secret, token, cookie, password or parameter value in any of them. All
// spans here arrive with the flush on SIGTERM (the batch delay is set far
// beyond the test), which proves that flush too.
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlpacaStandIns, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { gql, signUp, uniqueEmail } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlp-receiver.ts';
import { startServer } from '../support/server.ts';

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const LOADED_MODULES_HOOK = path.resolve(import.meta.dirname, '../support/loaded-modules.ts');

const STORE = `mutation Store($input: StoreCredentialInput!) {
  storeCredential(input: $input) { id apiKeyHint }
}`;

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  describe(`traces over OTLP ${protocol} (${dbKind})`, () => {
    let receiver: OtlpReceiver;
    let brokers: AlpacaStandIns;
    let exitCode: number | null;
    const secrets: string[] = [];
    let userId = '';

    beforeAll(async () => {
      receiver = await startOtlpReceiver();
      brokers = await startAlpacaStandIns();
      const server = await startServer({
        env: {
          ...brokers.env,
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
          OTEL_BSP_SCHEDULE_DELAY: '600000',
          METRICS_PORT: '0',
        },
      });
      const email = uniqueEmail('traces');
      const session = await signUp(server.url, { email });
      userId = session.user.id;
      const apiKey = `PKTRACE${'A'.repeat(12)}KEY1`;
      const secretKey = `trace-secret-${crypto.randomUUID()}`;
      const inlineSecret = `inline-secret-${crypto.randomUUID()}`;
      const querySecret = `query-secret-${crypto.randomUUID()}`;
      secrets.push(session.password, session.token, session.cookie.split('=')[1] ?? session.cookie, apiKey);
      secrets.push(secretKey, inlineSecret, querySecret, email);

      const account = await gql(server.url, 'mutation Open { getOrCreateAccount { account { id } } }', {}, session);
      const accountId = account.body.data?.getOrCreateAccount.account.id as string;
      const stored = await gql(
        server.url,
        STORE,
        { input: { accountId, credentialType: 'alpaca', apiKey, secretKey, nickname: 'Traced' } },
        { cookie: session.cookie },
      );
      expect(stored.body.errors).toBeUndefined();
      // One broker call (paper accepts the keys), through the Alpaca stand-in.
      brokers.paper.setKey(apiKey, { kind: 'account', secretKey });
      const verified = await gql(
        server.url,
        'mutation Verify($id: UUID!) { verifyCredential(id: $id) { verification { status } } }',
        { id: stored.body.data?.storeCredential.id },
        session,
      );
      expect(verified.body.data?.verifyCredential.verification.status).toBe('VERIFIED');
      // A secret written into the document itself, and one in a GET query string.
      await gql(
        server.url,
        `mutation Inline { storeCredential(input: { accountId: "${accountId}", credentialType: "alpaca", apiKey: "${inlineSecret}", secretKey: "${inlineSecret}" }) { id } }`,
        {},
        session,
      );
      const params = new URLSearchParams({
        query: 'query Peek($s: String) { viewer { id } }',
        variables: JSON.stringify({ s: querySecret }),
      });
      await fetch(`${server.url}/graphql?${params}`, { headers: { authorization: `Bearer ${session.token}` } });
      // A value the database refuses, quoted in its error message.
      await gql(server.url, 'query Bad($id: UUID!) { credential(id: $id) { id } }', { id: querySecret }, session);
      const overview = await gql(
        server.url,
        'query Overview { accounts { id credentials { id nickname apiKeyHint } } }',
        {},
        session,
      );
      expect(overview.body.errors).toBeUndefined();

      exitCode = await server.stop('SIGTERM');
      await server.close();
    });

    afterAll(async () => {
      await receiver?.close();
      await brokers?.close();
    });

    const byName = (name: string) => receiver.spans.filter((s) => s.name === name);
    const childrenOf = (span: ReceivedSpan) => receiver.spans.filter((s) => s.parentSpanId === span.spanId);
    const descendantsOf = (span: ReceivedSpan): ReceivedSpan[] =>
      childrenOf(span).flatMap((child) => [child, ...descendantsOf(child)]);

    it('exits 0 on SIGTERM after sending the spans, in the configured encoding', () => {
      expect(exitCode).toBe(0);
      expect(receiver.spans.length).toBeGreaterThan(10);
      const expected = protocol === 'http/json' ? 'application/json' : 'application/x-protobuf';
      expect(new Set(receiver.contentTypes)).toEqual(new Set([expected]));
      expect(receiver.spans[0]?.resource['service.name']).toBe('brokerage-credentials-api');
    });

    it('traces one operation: HTTP server span > GraphQL operation > parse, validate, execute > SQL', () => {
      const [operation] = byName('query Overview');
      expect(operation, receiver.spans.map((s) => s.name).join(', ')).toBeDefined();
      if (!operation) return;
      expect(operation.attributes).toMatchObject({
        'graphql.operation.name': 'Overview',
        'graphql.operation.type': 'query',
      });
      const http = receiver.spans.find((s) => s.spanId === operation.parentSpanId);
      expect(http?.name).toBe('POST /graphql');
      expect(http?.kind).toBe(SPAN_KIND_SERVER);
      expect(http?.attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.route': '/graphql',
        'http.response.status_code': 200,
      });
      expect(childrenOf(operation).map((s) => s.name)).toEqual(
        expect.arrayContaining(['graphql.parse', 'graphql.validate', 'graphql.execute']),
      );
      const execute = childrenOf(operation).find((s) => s.name === 'graphql.execute');
      if (!execute) throw new Error('no execute span');
      // pg's instrumentation on PostgreSQL, ours on PGlite (src/telemetry/spans.ts).
      const sql = descendantsOf(execute).filter((s) => s.kind === SPAN_KIND_CLIENT && s.attributes['db.query.text']);
      const statements = sql.map((s) => String(s.attributes['db.query.text']));
      expect(statements.some((t) => /^SELECT .*"user_accounts"/s.test(t) && t.includes('$1'))).toBe(true);
      expect(statements.some((t) => t.includes('set_config('))).toBe(true);
      expect(sql[0]?.attributes['db.system.name']).toBe('postgresql');
      if (dbKind === 'postgres') {
        expect(statements.some((t) => t.startsWith('BEGIN'))).toBe(true);
        expect(statements).toContain('COMMIT');
      }
    });

    it('traces the broker call with its environment, HTTP status and outcome only', () => {
      const [broker] = byName('broker.request');
      expect(broker?.kind).toBe(SPAN_KIND_CLIENT);
      expect(broker?.attributes).toEqual({
        'broker.environment': 'paper',
        'http.response.status_code': 200,
        'broker.outcome': 'verified',
      });
      expect(byName('mutation Verify')).toHaveLength(1);
    });

    it.runIf(dbKind === 'postgres')(
      'redacts the literals request-transaction.ts inlines into BEGIN (user id, role, limits)',
      () => {
        const begins = receiver.spans
          .map((s) => String(s.attributes['db.query.text'] ?? ''))
          .filter((t) => t.startsWith('BEGIN') && t.includes('set_config'));
        expect(begins.length).toBeGreaterThan(0);
        for (const text of begins) {
          expect(text).toBe(
            'BEGIN; SELECT set_config(?, ?, true), set_config(?, ?, true), set_config(?, ?, true), set_config(?, ?, true)',
          );
        }
      },
    );

    it('names the HTTP spans by route and records no query string and no header', () => {
      const servers = receiver.spans.filter((s) => s.kind === SPAN_KIND_SERVER);
      expect(servers.map((s) => s.name)).toEqual(expect.arrayContaining(['POST /api/auth', 'GET /graphql']));
      for (const span of servers) {
        expect(span.attributes['url.query']).toBeUndefined();
        expect(Object.keys(span.attributes).filter((k) => k.includes('header'))).toEqual([]);
      }
    });

    it('holds no secret, token, cookie, password, email, user id or parameter value', () => {
      const everything = JSON.stringify(receiver.spans);
      const raw = Buffer.concat(receiver.rawBodies).toString('latin1');
      for (const secret of [...secrets, userId]) {
        expect(everything, secret).not.toContain(secret);
        expect(raw, secret).not.toContain(secret);
      }
      expect(everything).not.toMatch(/bearer /i);
      expect(everything).not.toContain('better-auth.session_token');
      for (const span of receiver.spans) {
        expect(span.status.message).toBe('');
        for (const event of span.events) expect(event.attributes['exception.message']).toBeUndefined();
      }
    });
  });
}

describe(`sampling, decided once per request (${dbKind})`, () => {
  // Ratio 0: only a request whose traceparent says "sampled" is traced.
  let receiver: OtlpReceiver;
  let brokers: AlpacaStandIns;
  const sampledTraces: string[] = [];
  const unsampledTraces: string[] = [];
  const OVERVIEW = 'query Overview { accounts { id credentials { id nickname apiKeyHint } } }';
  const randomHex = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    brokers = await startAlpacaStandIns();
    const server = await startServer({
      env: {
        ...brokers.env,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0',
        OTEL_BSP_SCHEDULE_DELAY: '600000',
      },
    });
    const overview = async (flags: '00' | '01' | undefined, session: { token: string }) => {
      const traceId = randomHex(16);
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${session.token}`,
          ...(flags ? { traceparent: `00-${traceId}-${randomHex(8)}-${flags}` } : {}),
        },
        body: JSON.stringify({ query: OVERVIEW }),
      });
      expect(res.status).toBe(200);
      (flags === '01' ? sampledTraces : unsampledTraces).push(traceId);
    };
    // Unsampled: sign-up, account, a stored credential, a broker call, a read.
    const session = await signUp(server.url);
    const account = await gql(server.url, 'mutation Open { getOrCreateAccount { account { id } } }', {}, session);
    const accountId = account.body.data?.getOrCreateAccount.account.id as string;
    const apiKey = `PKSAMPLE${'B'.repeat(11)}KEY1`;
    const secretKey = `sample-secret-${crypto.randomUUID()}`;
    const stored = await gql(
      server.url,
      STORE,
      { input: { accountId, credentialType: 'alpaca', apiKey, secretKey } },
      session,
    );
    brokers.paper.setKey(apiKey, { kind: 'account', secretKey });
    const verified = await gql(
      server.url,
      'mutation Verify($id: UUID!) { verifyCredential(id: $id) { verification { status } } }',
      { id: stored.body.data?.storeCredential.id },
      session,
    );
    expect(verified.body.data?.verifyCredential.verification.status).toBe('VERIFIED');
    await overview(undefined, session);
    await overview('00', session);
    // Sampled by its caller, twice: the second is parsed and validated from yoga's cache.
    await overview('01', session);
    await overview('01', session);
    await overview('00', session);
    expect(await server.stop('SIGTERM')).toBe(0);
    await server.close();
  });

  afterAll(async () => {
    await receiver?.close();
    await brokers?.close();
  });

  const treeOf = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);

  it('exports the spans of the sampled requests only: nothing of sign-up, broker, SQL or unsampled reads', () => {
    expect(receiver.spans.length).toBeGreaterThan(0);
    expect(new Set(receiver.spans.map((s) => s.traceId))).toEqual(new Set(sampledTraces));
    for (const traceId of unsampledTraces) expect(treeOf(traceId)).toEqual([]);
    expect(receiver.spans.filter((s) => s.name === 'broker.request')).toEqual([]);
  });

  it('keeps the full tree of a sampled request under its caller: HTTP > operation > parse, validate, execute > SQL', () => {
    const [first] = sampledTraces;
    const spans = treeOf(first as string);
    const http = spans.find((s) => s.kind === SPAN_KIND_SERVER);
    expect(http?.name).toBe('POST /graphql');
    // Its parent is the caller's span, which this server never exported.
    expect(http?.parentSpanId).not.toBe('');
    expect(spans.find((s) => s.spanId === http?.parentSpanId)).toBeUndefined();
    const operation = spans.find((s) => s.name === 'query Overview');
    expect(operation?.parentSpanId).toBe(http?.spanId);
    const children = spans.filter((s) => s.parentSpanId === operation?.spanId).map((s) => s.name);
    expect(children.sort()).toEqual(['graphql.execute', 'graphql.parse', 'graphql.validate']);
    const sql = spans.filter((s) => s.kind === SPAN_KIND_CLIENT && s.attributes['db.query.text']);
    expect(sql.map((s) => String(s.attributes['db.query.text'])).some((t) => t.includes('"user_accounts"'))).toBe(true);
  });

  it('makes no parse or validate span for a document served from the cache', () => {
    const spans = treeOf(sampledTraces[1] as string);
    const operation = spans.find((s) => s.name === 'query Overview');
    expect(spans.filter((s) => s.parentSpanId === operation?.spanId).map((s) => s.name)).toEqual(['graphql.execute']);
    expect(spans.some((s) => s.kind === SPAN_KIND_CLIENT && s.attributes['db.query.text'])).toBe(true);
  });
});

describe('modules loaded', () => {
  const TELEMETRY_MODULES = /@opentelemetry|import-in-the-middle|prom-client/;
  /** The URLs of the modules a server resolved while serving one signed-in mutation. */
  const modulesLoaded = async (env: Record<string, string>) => {
    const file = path.join(os.tmpdir(), `bca-loaded-${crypto.randomUUID()}.txt`);
    const server = await startServer({
      env: { NODE_OPTIONS: `--import=${LOADED_MODULES_HOOK}`, LOADED_MODULES_FILE: file, ...env },
    });
    const session = await signUp(server.url);
    await gql(server.url, 'mutation Open { getOrCreateAccount { created } }', {}, session);
    expect(await server.stop()).toBe(0);
    await server.close();
    const loaded = (await readFile(file, 'utf8')).split('\n');
    await rm(file, { force: true });
    expect(loaded.some((url) => url.includes('/node_modules/graphql-yoga/'))).toBe(true);
    return loaded;
  };

  it('with tracing and metrics off: nothing of OpenTelemetry or prom-client', async () => {
    expect((await modulesLoaded({})).filter((url) => TELEMETRY_MODULES.test(url))).toEqual([]);
  });

  it('with both on: the SDK and prom-client (the check above can see them)', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const loaded = await modulesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, METRICS_PORT: '0' });
      expect(loaded.some((url) => url.includes('/@opentelemetry/sdk-node/'))).toBe(true);
      expect(loaded.some((url) => url.includes('/prom-client/'))).toBe(true);
    } finally {
      await receiver.close();
    }
  });
});
