// Trading-engine access where the process is the point (docs/engines.md):
// `npm run engine-client` against the server's own configuration, a
// real server process serving engines while logging at trace level with
// metrics and traces on, and a revocation by the CLI taking effect at the
// next request. Then no key, client secret or access token in any log line,
// metric, span or byte of the database.
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlpacaStandIns, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';
import { engineRequest, grantedCredential, proxyPath, received, requestToken } from '../support/engine.ts';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.ts';
import { startServer, type TestServer, testSecrets } from '../support/server.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

let brokers: AlpacaStandIns;
let receiver: OtlpReceiver;
let db: TestDatabase;
const logs: string[] = [];
const secrets: string[] = [];

/** `npm run engine-client -- ARGS` with the server's configuration; stdout's lines and the exit code. */
async function cli(args: string[], silent = false): Promise<{ lines: string[]; code: number; stderr: string }> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...testSecrets, ...db.env };
  try {
    const { stdout, stderr } = await run(
      'npm',
      ['run', ...(silent ? ['--silent'] : []), 'engine-client', '--', ...args],
      {
        cwd: ROOT,
        env,
      },
    );
    return { lines: stdout.split('\n').filter(Boolean), code: 0, stderr };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { lines: failed.stdout.split('\n').filter(Boolean), code: failed.code, stderr: failed.stderr };
  }
}

function forms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  return [value, bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')];
}

type Cli = Awaited<ReturnType<typeof cli>>;
type Response = Awaited<ReturnType<typeof engineRequest>>;

/**
 * What the scenario produced. It runs once, in beforeAll, as an operator
 * would (create a client, serve, revoke, stop); each test then asserts its
 * part, so any one of them run alone (-t) still has the whole scenario to
 * look at.
 */
interface Scenario {
  created: Cli;
  listed: Cli;
  usage: Cli;
  blank: Cli;
  client: { clientId: string; clientSecret: string; name: string };
  tokenStatus: number;
  clientOrderId: string;
  credentialId: string;
  placed: Response;
  lookedUp: Response;
  notFound: Response;
  traversal: Response;
  unauthenticated: Response;
  metrics: string;
  revoked: Cli;
  /** After the revocation: the engine call, a new token, and broker requests before/after. */
  refused: Response;
  tokenAfterRevoke: number;
  brokerRequests: { before: number; after: number };
  /** Exit codes of every server stop. */
  exits: (number | null)[];
}
let scenario: Scenario;

beforeAll(async () => {
  brokers = await startAlpacaStandIns();
  receiver = await startOtlpReceiver();
  db = await createTestDatabase();

  let server: TestServer | undefined;
  const exits: (number | null)[] = [];
  const start = async () => {
    server = await startServer({
      db,
      env: {
        ...brokers.env,
        LOG_LEVEL: 'trace',
        METRICS_PORT: '0',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        // Spans go out with the flush at SIGTERM.
        OTEL_BSP_SCHEDULE_DELAY: '600000',
      },
    });
    return server;
  };
  const stop = async () => {
    if (!server) return;
    exits.push(await server.stop());
    logs.push(...server.logs);
    server = undefined;
  };

  try {
    const created = await cli(['create', 'Orchestrator (prod)']);
    const json = created.lines.filter((l) => l.startsWith('{'));
    const client = JSON.parse(json[0] ?? '{}');
    if (client.clientSecret) secrets.push(client.clientSecret);
    const listed = await cli(['list'], true);
    const usage = await cli(['remove', client.clientId], true);
    const blank = await cli(['create', ' '], true);

    let url = (await start()).url;
    const tokenRes = await requestToken(url, client, 'post');
    const token = tokenRes.body.access_token as string;
    secrets.push(token);
    const { credential } = await grantedCredential(url, brokers.paper, client.clientId);
    secrets.push(credential.apiKey, credential.secretKey);
    const clientOrderId = `proc-${randomUUID()}`;
    const placed = await engineRequest(url, 'POST', proxyPath(credential.id, 'v2/orders'), {
      token,
      body: JSON.stringify({
        symbol: 'AAPL',
        qty: '1',
        side: 'buy',
        type: 'market',
        time_in_force: 'day',
        client_order_id: clientOrderId,
      }),
      headers: { 'content-type': 'application/json' },
    });
    const lookedUp = await engineRequest(
      url,
      'GET',
      proxyPath(credential.id, `v2/orders:by_client_order_id?client_order_id=${clientOrderId}`),
      { token },
    );
    const notFound = await engineRequest(url, 'GET', proxyPath(randomUUID(), 'v2/account'), { token });
    const traversal = await engineRequest(url, 'GET', proxyPath(credential.id, 'v2/../x'), { token });
    const unauthenticated = await engineRequest(url, 'GET', '/engine/v1/grants');

    const metricsLine = server?.logs.find((l) => /metrics on http:\/\/localhost:\d+\/metrics/.test(l)) ?? '';
    const port = /localhost:(\d+)\/metrics/.exec(metricsLine)?.[1];
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

    const before = received(brokers.paper, credential.apiKey).length;
    let revoked: Cli;
    if (dbKind === 'postgres') {
      // PostgreSQL: the CLI runs beside the server; the very next request is refused.
      revoked = await cli(['revoke', client.clientId], true);
    } else {
      // PGlite allows one process: the operator stops the server to run the CLI.
      await stop();
      revoked = await cli(['revoke', client.clientId], true);
      url = (await start()).url;
    }
    const refused = await engineRequest(url, 'GET', proxyPath(credential.id, 'v2/account'), { token });
    const tokenAfterRevoke = (await requestToken(url, client)).status;
    const after = received(brokers.paper, credential.apiKey).length;
    await stop();
    scenario = {
      created,
      listed,
      usage,
      blank,
      client,
      tokenStatus: tokenRes.status,
      clientOrderId,
      credentialId: credential.id,
      placed,
      lookedUp,
      notFound,
      traversal,
      unauthenticated,
      metrics,
      revoked,
      refused,
      tokenAfterRevoke,
      brokerRequests: { before, after },
      exits,
    };
  } finally {
    await stop();
  }
  // Two starts and a CLI run of the embedded database on a busy 2-core machine.
}, 300_000);
afterAll(async () => {
  await brokers?.close();
  await receiver?.close();
  await db?.drop();
});

describe(`engine clients from the command line, a served engine, what leaves the process (${dbKind})`, () => {
  it('creates a client: one line of JSON with the secret, shown once; list shows no secret', () => {
    const { created, listed, usage, blank, client } = scenario;
    expect(created.code).toBe(0);
    // npm prints its banner first; the command's own output is one line of JSON.
    const json = created.lines.filter((l) => l.startsWith('{'));
    expect(json).toHaveLength(1);
    expect(created.lines.at(-1)).toBe(json[0]);
    expect(client).toEqual({
      clientId: expect.stringMatching(/^ec_[A-Za-z0-9_-]{16}$/),
      clientSecret: expect.stringMatching(/^ecs_[A-Za-z0-9_-]{43}$/),
      name: 'Orchestrator (prod)',
    });

    expect(listed.code).toBe(0);
    expect(listed.lines).toHaveLength(1);
    expect(JSON.parse(listed.lines[0] as string)).toEqual([
      { id: client.clientId, name: 'Orchestrator (prod)', createdAt: expect.any(String), revokedAt: null },
    ]);
    expect(listed.lines[0]).not.toContain(client.clientSecret);

    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/usage: npm run engine-client -- create NAME \| list \| revoke CLIENT_ID/);
    expect(blank.code).toBe(1);
  });

  it('serves the engine: token, grants, an order; the CLI’s revocation stops it at the next request', () => {
    const { client, metrics } = scenario;
    expect(scenario.tokenStatus).toBe(200);
    expect(scenario.placed.status).toBe(200);
    expect(scenario.lookedUp.json.client_order_id).toBe(scenario.clientOrderId);
    expect(scenario.notFound.status).toBe(404);
    expect(scenario.traversal.status).toBe(403);
    expect(scenario.unauthenticated.status).toBe(401);

    const value = (series: string) =>
      Number(
        metrics
          .split('\n')
          .find((l) => l.startsWith(`${series} `))
          ?.split(' ')[1] ?? Number.NaN,
      );
    expect(value(`engine_requests_total{client="${client.clientId}",outcome="forwarded"}`)).toBe(2);
    expect(value(`engine_requests_total{client="${client.clientId}",outcome="NOT_FOUND"}`)).toBe(1);
    expect(value(`engine_requests_total{client="${client.clientId}",outcome="ROUTE_NOT_ALLOWED"}`)).toBe(1);
    expect(value('engine_requests_total{client="none",outcome="UNAUTHENTICATED"}')).toBe(1);
    expect(value('broker_requests_total{environment="paper",outcome="forwarded"}')).toBe(2);
    // The token request and the order.
    expect(value('http_requests_total{method="POST",route="/engine/v1",status="200"}')).toBe(2);
    for (const secret of [...secrets, scenario.clientOrderId, scenario.credentialId]) {
      expect(metrics).not.toContain(secret);
    }

    expect(scenario.revoked.code).toBe(0);
    expect(JSON.parse(scenario.revoked.lines[0] as string)).toMatchObject({
      id: client.clientId,
      revokedAt: expect.any(String),
    });
    expect(scenario.refused.status).toBe(401);
    expect(scenario.tokenAfterRevoke).toBe(401);
    expect(scenario.brokerRequests.after).toBe(scenario.brokerRequests.before);
    // Every stop (one on PostgreSQL, two on PGlite) was a clean exit.
    expect(scenario.exits).toEqual(dbKind === 'postgres' ? [0] : [0, 0]);
  });

  it('traces engine requests without a key, token or query value', () => {
    const { client } = scenario;
    const engineSpans = receiver.spans.filter((s) => s.name === 'engine.request');
    const forwarded = engineSpans.find((s) => s.attributes['engine.request'] === 'POST /v2/orders');
    expect(forwarded?.attributes).toEqual({
      'engine.client_id': client.clientId,
      'engine.request': 'POST /v2/orders',
      'http.response.status_code': 200,
      'engine.outcome': 'forwarded',
    });
    const brokerCalls = receiver.spans.filter(
      (s) => s.name === 'broker.request' && s.parentSpanId === forwarded?.spanId && s.traceId === forwarded?.traceId,
    );
    // The guardrail checks' read (the order's asset), then the order itself.
    expect(brokerCalls.map((s) => s.attributes['broker.outcome']).sort()).toEqual(['forwarded', 'read']);
    for (const broker of brokerCalls) expect(broker.attributes).toMatchObject({ 'broker.environment': 'paper' });
    expect(receiver.spans.some((s) => s.name === 'POST /engine/v1')).toBe(true);
    expect(engineSpans.map((s) => s.attributes['engine.outcome'])).toEqual(
      expect.arrayContaining(['forwarded', 'NOT_FOUND', 'ROUTE_NOT_ALLOWED', 'UNAUTHENTICATED']),
    );
    const raw = Buffer.concat(receiver.rawBodies).toString('utf8');
    expect(secrets).toHaveLength(4);
    for (const secret of secrets) {
      for (const form of forms(secret)) expect(raw.includes(form), `${secret.slice(0, 6)}… in a span`).toBe(false);
    }
    expect(raw).not.toMatch(/client_order_id=|proc-[0-9a-f]{8}/);
  });

  it('logs one line per engine request, and no key, client secret or token anywhere', () => {
    expect(logs.length).toBeGreaterThan(20);
    expect(secrets).toHaveLength(4);
    for (const secret of secrets) {
      for (const form of forms(secret)) {
        const hit = logs.find((l) => l.includes(form));
        expect(hit, `${secret.slice(0, 6)}… in the log: ${hit}`).toBeUndefined();
      }
    }
    const lines = logs.filter((l) => l.includes('"engine request"')).map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.request, l.status, l.outcome])).toEqual(
      expect.arrayContaining([
        ['POST /v2/orders', 200, 'forwarded'],
        ['GET /v2/orders:by_client_order_id', 200, 'forwarded'],
        [null, 401, 'UNAUTHENTICATED'],
      ]),
    );
  });

  it('leaves no client secret or token in a dump of the database', async () => {
    const dump = await dumpDatabase(db);
    // The client is in there (as the hash of its secret), so an empty dump cannot pass.
    const hash = createHash('sha256').update(scenario.client.clientSecret).digest('hex');
    expect(dump.includes(Buffer.from(hash))).toBe(true);
    expect(secrets).toHaveLength(4);
    for (const secret of secrets) {
      for (const form of forms(secret))
        expect(dump.includes(Buffer.from(form)), `${secret.slice(0, 6)}… in the database`).toBe(false);
    }
  });
});

/** Everything the (stopped) database holds, as bytes: pg_dump, or PGlite's files plus every row as JSON. */
async function dumpDatabase(database: TestDatabase): Promise<Buffer> {
  if (database.url) {
    const { stdout } = await run('pg_dump', ['--no-owner', '--inserts', database.url], {
      maxBuffer: 256 * 1024 * 1024,
      encoding: 'buffer',
    });
    return stdout;
  }
  const dataDir = database.config.kind === 'pglite' ? database.config.dataDir : '';
  const files = (await readdir(dataDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  const raw = await Promise.all(files.map((f) => readFile(path.join(f.parentPath, f.name))));
  const pglite = new PGlite(dataDir);
  try {
    const tables = await pglite.query<{ tablename: string }>(
      `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`,
    );
    const rows: string[] = [];
    for (const { tablename } of tables.rows) {
      const result = await pglite.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${tablename}" t`);
      rows.push(...result.rows.map((r) => r.row));
    }
    return Buffer.concat([...raw, Buffer.from(rows.join('\n'))]);
  } finally {
    await pglite.close();
  }
}
