// Prometheus metrics, scraped from the METRICS_PORT listener of a real server
// process after known requests: series, labels and counts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlpacaStandIns, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { gql, signUp, uniqueEmail } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { startServer, useServer } from '../support/server.ts';

/** `name{labels} value` lines of the text format, as name{labels} -> value. */
function parse(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    series.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return series;
}

const metricsUrl = (logs: string[]) => {
  const line = logs.find((l) => /metrics on http:\/\/localhost:\d+\/metrics/.test(l));
  const port = line && /localhost:(\d+)\/metrics/.exec(line)?.[1];
  if (!port) throw new Error(`no metrics line in:\n${logs.join('\n')}`);
  return `http://127.0.0.1:${port}`;
};

describe(`metrics (${dbKind})`, () => {
  let brokers: AlpacaStandIns;
  beforeAll(async () => {
    brokers = await startAlpacaStandIns();
  });
  afterAll(async () => {
    await brokers.close();
  });
  const server = useServer({
    env: {
      METRICS_PORT: '0',
      // Resolved when the server starts (after the stand-ins, in beforeAll order).
      get ALPACA_PAPER_URL() {
        return brokers.paper.url;
      },
      get ALPACA_LIVE_URL() {
        return brokers.live.url;
      },
    },
  });
  const scrape = async () => {
    const res = await fetch(`${metricsUrl(server.logs)}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.text();
  };

  it('shows every series from the start: broker counters at 0, the pool, process and Node.js metrics', async () => {
    const series = parse(await scrape());
    for (const environment of ['paper', 'live']) {
      for (const outcome of ['verified', 'invalid', 'unreachable']) {
        expect(series.get(`broker_requests_total{environment="${environment}",outcome="${outcome}"}`)).toBe(0);
      }
    }
    for (const state of ['idle', 'active', 'waiting']) {
      expect(series.has(`db_pool_connections{state="${state}"}`), state).toBe(true);
    }
    expect(series.has('process_cpu_seconds_total')).toBe(true);
    expect(series.has('nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('counts requests by method, fixed route name and status, and GraphQL operations by name and outcome', async () => {
    const email = uniqueEmail('metrics');
    const session = await signUp(server.url, { email });
    for (let i = 0; i < 2; i += 1) await fetch(`${server.url}/health`);
    await fetch(`${server.url}/ready`);
    await fetch(`${server.url}/nope/123e4567-e89b-12d3-a456-426614174000?token=hunter2`);
    for (let i = 0; i < 3; i += 1) {
      expect((await gql(server.url, 'query Viewer { viewer { id } }', {}, session)).status).toBe(200);
    }
    expect((await gql(server.url, 'query Accounts { accounts { id } }')).status).toBe(401);
    await gql(server.url, '{');
    await gql(server.url, 'mutation Open { getOrCreateAccount { created } }', {}, session);

    const text = await scrape();
    const series = parse(text);
    const http = (method: string, route: string, status: number) =>
      `{method="${method}",route="${route}",status="${status}"}`;
    expect(series.get(`http_requests_total${http('GET', '/health', 200)}`)).toBe(2);
    expect(series.get(`http_requests_total${http('GET', '/ready', 200)}`)).toBe(1);
    expect(series.get(`http_requests_total${http('GET', 'other', 404)}`)).toBe(1);
    expect(series.get(`http_requests_total${http('POST', '/graphql', 200)}`)).toBe(4);
    expect(series.get(`http_requests_total${http('POST', '/graphql', 401)}`)).toBe(1);
    expect(series.get(`http_requests_total${http('POST', '/graphql', 400)}`)).toBe(1);
    expect(series.get(`http_requests_total${http('POST', '/api/auth', 200)}`)).toBe(1);
    expect(series.get(`http_request_duration_seconds_count${http('GET', '/health', 200)}`)).toBe(2);
    expect(series.get(`http_request_duration_seconds_bucket{le="+Inf",${http('POST', '/graphql', 200).slice(1)}`)).toBe(
      4,
    );

    expect(series.get('graphql_operations_total{operation="Viewer",outcome="ok"}')).toBe(3);
    expect(series.get('graphql_operations_total{operation="Accounts",outcome="UNAUTHENTICATED"}')).toBe(1);
    expect(series.get('graphql_operations_total{operation="unknown",outcome="GRAPHQL_PARSE_FAILED"}')).toBe(1);
    expect(series.get('graphql_operations_total{operation="Open",outcome="ok"}')).toBe(1);

    // Quiet now: nothing holds or waits for a connection.
    expect(series.get('db_pool_connections{state="active"}')).toBe(0);
    expect(series.get('db_pool_connections{state="waiting"}')).toBe(0);
    if (dbKind === 'pglite') expect(series.get('db_pool_connections{state="idle"}')).toBe(1);
    else expect(series.get('db_pool_connections{state="idle"}')).toBeGreaterThanOrEqual(1);

    // No raw path, id, query string, email or token in any label.
    for (const leak of ['/nope', '123e4567', 'hunter2', 'token', email, session.token ?? 'no-token', '/sign-up']) {
      expect(text, leak).not.toContain(leak);
    }
  });

  it('counts each broker request by environment and outcome', async () => {
    const session = await signUp(server.url);
    const account = await gql(server.url, 'mutation { getOrCreateAccount { account { id } } }', {}, session);
    const store = async (apiKey: string) =>
      (
        await gql(
          server.url,
          'mutation S($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }',
          {
            input: {
              accountId: account.body.data?.getOrCreateAccount.account.id,
              credentialType: 'alpaca',
              apiKey,
              secretKey: 'metrics-secret-1',
            },
          },
          session,
        )
      ).body.data?.storeCredential.id as string;
    const verify = (id: string) =>
      gql(server.url, 'mutation V($id: UUID!) { verifyCredential(id: $id) { id } }', { id }, session);
    brokers.paper.setKey('PKMETRICSGOOD1', { kind: 'account', secretKey: 'metrics-secret-1' });
    await verify(await store('PKMETRICSGOOD1'));
    // Unknown everywhere: paper answers 401, then live 401 (two requests).
    await verify(await store('PKMETRICSBAD22'));
    brokers.live.setKey('AKMETRICSDOWN3', { kind: 'status', status: 503 });
    await verify(await store('AKMETRICSDOWN3'));

    const series = parse(await scrape());
    const broker = (environment: string, outcome: string) =>
      series.get(`broker_requests_total{environment="${environment}",outcome="${outcome}"}`);
    expect(broker('paper', 'verified')).toBe(1);
    expect(broker('paper', 'invalid')).toBe(1);
    expect(broker('live', 'invalid')).toBe(1);
    expect(broker('live', 'unreachable')).toBe(1);
    expect(broker('live', 'verified')).toBe(0);
    expect(broker('paper', 'unreachable')).toBe(0);
  });

  it('serves GET /metrics only, and only on METRICS_PORT', async () => {
    const base = metricsUrl(server.logs);
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/graphql`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
  });

  it('stops its metrics listener on SIGTERM and exits 0', async () => {
    const own = await startServer({ env: { METRICS_PORT: '0' } });
    const base = metricsUrl(own.logs);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    expect(await own.stop('SIGTERM')).toBe(0);
    await expect(fetch(`${base}/metrics`)).rejects.toThrow();
    await own.close();
  });
});
