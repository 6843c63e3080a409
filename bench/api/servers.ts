// The servers a bench run measures, each a child process on its own port and
// the same database: the product (node src/main.ts as users start it, in one
// or more variants: telemetry settings, extra variables, another checkout),
// the raw baseline and PostGraphile. A new peer: one start function here
// and its request in workloads.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/support/ports.ts';
import { connectInspector, type Inspector } from '../profile.ts';
import type { ServerKind, WorkloadName } from './workloads.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface RunningProcess {
  child: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
}

export interface BenchServer {
  /** Its row in the table: `product`, `product+tracing100`, `compare`, `baseline`... */
  name: string;
  kind: ServerKind;
  url: string;
  process: RunningProcess;
  /** The workloads it runs (PostGraphile and telemetry variants: W1 only). */
  workloads: WorkloadName[];
  /** Product variants: the server of the same checkout with nothing added, the one its `vs off` ratio divides by. */
  off?: string;
  /** With --profile: the product's inspector, to profile its measured runs. */
  inspector?: Inspector;
}

const cleanups: (() => Promise<unknown>)[] = [];
export const onCleanUp = (fn: () => Promise<unknown>) => cleanups.push(fn);
export async function cleanUp(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch((e: Error) => console.error(`cleanup: ${e.message}`));
}

/** Starts a server process and resolves once `ready()` holds. */
export async function startProcess(
  name: string,
  args: string[],
  env: Record<string, string>,
  ready: () => Promise<boolean>,
  cwd = ROOT,
): Promise<RunningProcess> {
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() && logs.length < 1000) logs.push(line);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running: RunningProcess = {
    child,
    logs,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  cleanups.push(running.stop);
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${logs.join('\n')}`);
    if (await ready().catch(() => false)) return running;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${name} did not become ready:\n${logs.join('\n')}`);
}

const answers = (url: string) => () => fetch(url).then((r) => r.ok);

/**
 * W2 stores thousands of credentials per account over a run, far past the
 * default cap of 100 that the database enforces: the products and the
 * baseline run with this one, so that no server's W2 turns into refusals.
 */
export const BENCH_CREDENTIAL_CAP = '10000';
export const baseEnv = () => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir() });

/** A product variant: its name, the checkout it runs from, what it adds to the product's environment. */
export interface ProductVariant {
  name: string;
  dir: string;
  env: Record<string, string>;
  workloads: WorkloadName[];
  off: string;
}

/**
 * The product exactly as users start it (docs/operations.md), plus the variant's
 * variables. The shared environment (secrets, database, pool) comes from the
 * caller so that every variant serves the same users.
 */
export async function startProduct(
  variant: ProductVariant,
  shared: Record<string, string>,
  profile: boolean,
): Promise<BenchServer> {
  const port = await freePort();
  const inspectPort = profile ? await freePort() : 0;
  const env = { ...shared, PORT: String(port), BETTER_AUTH_URL: `http://localhost:${port}`, ...variant.env };
  const url = `http://127.0.0.1:${port}`;
  const proc = await startProcess(
    variant.name,
    [...(profile ? [`--inspect=127.0.0.1:${inspectPort}`] : []), 'src/main.ts'],
    env,
    answers(`${url}/ready`),
    variant.dir,
  );
  const inspector = profile ? await connectInspector(inspectPort) : undefined;
  // A connected inspector would keep the product from exiting.
  if (inspector) cleanups.push(async () => inspector.close());
  const added = Object.entries(variant.env).map(([k, v]) => `${k}=${v}`);
  console.log(
    `${variant.name}: ${path.relative(process.cwd(), variant.dir) || '.'}/src/main.ts on :${port}${added.length ? ` with ${added.join(' ')}` : ''}`,
  );
  return {
    name: variant.name,
    kind: 'product',
    url,
    process: proc,
    workloads: variant.workloads,
    off: variant.off,
    inspector,
  };
}

export async function startBaseline(
  shared: { databaseUrl: string; encryptionKey: string; poolSize: number },
  workloads: WorkloadName[],
): Promise<BenchServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  console.log(`baseline: bench/baseline-server.ts on :${port} (node:http + pg, pool ${shared.poolSize})`);
  const proc = await startProcess(
    'baseline',
    ['bench/baseline-server.ts'],
    {
      ...baseEnv(),
      PORT: String(port),
      DATABASE_URL: shared.databaseUrl,
      ENCRYPTION_KEY: shared.encryptionKey,
      POOL_SIZE: String(shared.poolSize),
      MAX_CREDENTIALS_PER_ACCOUNT: BENCH_CREDENTIAL_CAP,
    },
    answers(`${url}/health`),
  );
  return { name: 'baseline', kind: 'baseline', url, process: proc, workloads };
}

export async function startPostgraphile(
  shared: { databaseUrl: string; poolSize: number },
  version: string,
): Promise<BenchServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  console.log(
    `postgraphile: bench/postgraphile-server.ts on :${port} (PostGraphile ${version}, Amber preset, ` +
      `node:http, pool ${shared.poolSize}), W1 only. RLS through pgSettings (role app_user, app.current_user_id) ` +
      'with the user id taken from an x-user-id header: it has no better-auth, so unlike the product and the ' +
      'baseline it authenticates nothing and looks no session up',
  );
  const proc = await startProcess(
    'postgraphile',
    ['bench/postgraphile-server.ts'],
    { ...baseEnv(), PORT: String(port), DATABASE_URL: shared.databaseUrl, POOL_SIZE: String(shared.poolSize) },
    () =>
      fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"query":"{ __typename }"}',
      }).then((r) => r.ok),
  );
  return { name: 'postgraphile', kind: 'postgraphile', url, process: proc, workloads: ['W1'] };
}

/**
 * An OTLP/HTTP endpoint that reads each export and discards it (--telemetry):
 * the product pays for building, batching, encoding and sending its spans,
 * as with a real collector, and nothing here decodes them.
 */
export async function startDiscardingReceiver(): Promise<{ url: string; exports: () => number }> {
  let exports = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.once('end', () => {
      exports += 1;
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, exports: () => exports };
}

/**
 * The telemetry variants of one checkout (--telemetry): metrics on, tracing
 * at 100 % and at 10 % of requests (parent-based, as docs/operations.md shows),
 * to `otlpUrl`, each compared with the same checkout's `off`.
 */
export function telemetryVariants(off: string, dir: string, otlpUrl: string): ProductVariant[] {
  const tracing = { OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' };
  return [
    { name: `${off}+metrics`, dir, env: { METRICS_PORT: '0' }, workloads: ['W1'], off },
    { name: `${off}+tracing100`, dir, env: tracing, workloads: ['W1'], off },
    {
      name: `${off}+tracing10`,
      dir,
      env: { ...tracing, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
      workloads: ['W1'],
      off,
    },
  ];
}
