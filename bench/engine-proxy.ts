// What the engine proxy (docs/architecture/engine-proxy.md) costs, against the Alpaca
// stand-in (test/support/alpaca-stand-in.ts) in this process. Usage:
//
//   npm run bench:engine                         # PGlite and PostgreSQL
//   npm run bench:engine -- --db postgres --requests 200 --duration 10
//
// Per database (a fresh one: a temporary DATA_DIR, or a database created on
// BENCH_DATABASE_URL and dropped at the end), with the server started as in
// production (node src/main.ts, NODE_ENV=production, LOG_LEVEL=warn):
// 1. latency: --requests sequential GET v2/account through the proxy, each
//    paired with the same GET sent to the stand-in directly (alternating, so
//    both see the same noise); median and p99 of each and of the difference;
//    and the server's CPU per proxied request (utime + stime from /proc), with
//    a GraphQL read of the same size for comparison;
// 2. throughput: wrk, 1 thread, 16 connections, --duration seconds, against
//    the proxy and against the stand-in directly (ENGINE_RATE_LIMIT raised so
//    the limit's bookkeeping is paid but never refuses);
// 3. isolation: with DATABASE_POOL_SIZE=3, the median latency of other
//    users' GraphQL requests (reads and getOrCreateAccount, 5 at a time)
//    without and with 15 engine requests hanging at the stand-in, in 3
//    alternating rounds of 30 each.
// Prints the figures and writes bench/results/engine-proxy.json. To profile
// the server: BENCH_SERVER_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=DIR'.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { type AlpacaStandIns, startAlpacaStandIns } from '../test/support/alpaca-stand-in.ts';
import { gql } from '../test/support/client.ts';
import { accessToken, grantedCredential, owner, proxyPath } from '../test/support/engine.ts';
import { otherUsersLoad } from '../test/support/other-users.ts';
import { freePort } from '../test/support/ports.ts';
import { ensureWrk } from './load-generator.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const run = promisify(execFile);

const { values: flags } = parseArgs({
  options: {
    db: { type: 'string', default: 'both' },
    requests: { type: 'string', default: '200' },
    duration: { type: 'string', default: '10' },
    'admin-url': {
      type: 'string',
      default: process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    },
  },
});
const REQUESTS = Number(flags.requests);
const DURATION = Number(flags.duration);
const kinds = flags.db === 'both' ? (['pglite', 'postgres'] as const) : ([flags.db] as ('pglite' | 'postgres')[]);

const secrets = {
  ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  BETTER_AUTH_SECRET: randomBytes(32).toString('hex'),
};

interface BenchDatabase {
  env: Record<string, string>;
  drop(): Promise<void>;
}

async function createDatabase(kind: 'pglite' | 'postgres'): Promise<BenchDatabase> {
  if (kind === 'pglite') {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bca-bench-engine-'));
    return { env: { DATA_DIR: dir }, drop: () => rm(dir, { recursive: true, force: true }) };
  }
  const name = `bca_bench_engine_${randomBytes(4).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: flags['admin-url'] });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(flags['admin-url'] as string);
  url.pathname = `/${name}`;
  return { env: { DATABASE_URL: url.toString() }, drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

interface Server {
  url: string;
  /** The server process's CPU time so far (utime + stime), in ms. */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

async function startServer(env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_OPTIONS: process.env.BENCH_SERVER_NODE_OPTIONS ?? '',
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      PORT: String(port),
      BETTER_AUTH_URL: `http://localhost:${port}`,
      ...secrets,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://localhost:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    if (
      await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) throw new Error('the server did not start');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    cpuMs: async () => {
      const fields = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    },
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
const ms = (n: number) => Number(n.toFixed(2));

async function timed(run: () => Promise<Response>): Promise<number> {
  const started = performance.now();
  const res = await run();
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return performance.now() - started;
}

async function wrk(
  url: string,
  headers: Record<string, string>,
): Promise<{ rps: number; p50: string; p99: string; errors: number }> {
  const binary = ensureWrk();
  const args = [
    '-t1',
    '-c16',
    `-d${DURATION}s`,
    '--latency',
    ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    url,
  ];
  await run(binary, ['-t1', '-c16', '-d2s', ...args.slice(3)]); // warm-up
  const { stdout } = await run(binary, args);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p50 = /^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? '?';
  const p99 = /^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? '?';
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = non2xx + (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p50, p99, errors };
}

async function benchOne(kind: 'pglite' | 'postgres', brokers: AlpacaStandIns) {
  const db = await createDatabase(kind);
  try {
    // The client, as the operator makes it (on PGlite before the server starts).
    const { stdout } = await run(process.execPath, ['src/cli/engine-client.ts', 'create', 'bench'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...secrets, ...db.env },
    });
    const client = JSON.parse(stdout) as { clientId: string; clientSecret: string };
    const env = { ...brokers.env, ...db.env, BROKER_TIMEOUT_MS: '30000' };

    let server = await startServer({ ...env, ENGINE_RATE_LIMIT: '1000000' });
    const token = await accessToken(server.url, client);
    const { who, credential } = await grantedCredential(server.url, brokers.paper, client.clientId, {
      scopes: ['READ'],
    });
    const direct = () =>
      fetch(`${brokers.paper.url}/v2/account`, {
        headers: { 'APCA-API-KEY-ID': credential.apiKey, 'APCA-API-SECRET-KEY': credential.secretKey },
      });
    const proxied = () =>
      fetch(`${server.url}${proxyPath(credential.id, 'v2/account')}`, {
        headers: { authorization: `Bearer ${token}` },
      });
    for (let i = 0; i < 20; i++) {
      await timed(direct);
      await timed(proxied);
    }
    const directTimes: number[] = [];
    const proxiedTimes: number[] = [];
    const added: number[] = [];
    const cpuBefore = await server.cpuMs();
    for (let i = 0; i < REQUESTS; i++) {
      const d = await timed(direct);
      const p = await timed(proxied);
      directTimes.push(d);
      proxiedTimes.push(p);
      added.push(p - d);
    }
    // The server's CPU per proxied request (the direct calls never reach it), and per
    // GraphQL read of the same user's accounts and credentials for comparison.
    const proxiedCpu = ((await server.cpuMs()) - cpuBefore) / REQUESTS;
    const graphqlCpuBefore = await server.cpuMs();
    for (let i = 0; i < REQUESTS; i++) {
      const res = await gql(server.url, '{ accounts { id credentials { id } } }', undefined, who.session);
      if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
    }
    const graphqlCpu = ((await server.cpuMs()) - graphqlCpuBefore) / REQUESTS;
    for (const list of [directTimes, proxiedTimes, added]) list.sort((a, b) => a - b);
    const latency = {
      direct: { median: ms(quantile(directTimes, 0.5)), p99: ms(quantile(directTimes, 0.99)) },
      proxied: { median: ms(quantile(proxiedTimes, 0.5)), p99: ms(quantile(proxiedTimes, 0.99)) },
      added: { median: ms(quantile(added, 0.5)), p99: ms(quantile(added, 0.99)) },
      serverCpuMsPerRequest: { proxied: ms(proxiedCpu), graphqlRead: ms(graphqlCpu) },
    };
    console.log(`[${kind}] latency of ${REQUESTS} sequential GET v2/account (ms):`, JSON.stringify(latency));

    const throughput = {
      proxied: await wrk(`${server.url}${proxyPath(credential.id, 'v2/account')}`, {
        authorization: `Bearer ${token}`,
      }),
      direct: await wrk(`${brokers.paper.url}/v2/account`, {
        'APCA-API-KEY-ID': credential.apiKey,
        'APCA-API-SECRET-KEY': credential.secretKey,
      }),
    };
    console.log(`[${kind}] wrk 16 connections, ${DURATION} s:`, JSON.stringify(throughput));
    await server.stop();

    // Isolation: a pool of 3, 15 engine requests hanging at Alpaca.
    server = await startServer({ ...env, DATABASE_POOL_SIZE: '3' });
    const hangToken = await accessToken(server.url, client);
    const hangers = await Promise.all(Array.from({ length: 3 }, () => owner(server.url)));
    const hung = [];
    for (let i = 0; i < 15; i++) {
      hung.push(
        await grantedCredential(server.url, brokers.paper, client.clientId, {
          who: hangers[i % 3],
          scopes: ['READ'],
          behaviour: () => ({ kind: 'hang' }),
        }),
      );
    }
    const others = await Promise.all(Array.from({ length: 5 }, () => owner(server.url)));
    const load = () => otherUsersLoad(server.url, others);
    await load();
    // Rounds of: the load alone, then the same load while 15 engine requests hang.
    const quiet: number[] = [];
    const during: number[] = [];
    let hangingThroughout = true;
    const statuses = new Set<number>();
    for (let round = 0; round < 3; round++) {
      quiet.push(...(await load()));
      const hangingBefore = brokers.paper.hanging;
      const pending = hung.map(({ credential: c }) =>
        fetch(`${server.url}${proxyPath(c.id, 'v2/account')}`, {
          headers: { authorization: `Bearer ${hangToken}` },
        }).then((r) => r.status),
      );
      while (brokers.paper.hanging < hangingBefore + 15) await new Promise((r) => setTimeout(r, 10));
      during.push(...(await load()));
      hangingThroughout &&= brokers.paper.hanging - hangingBefore === 15;
      brokers.paper.release();
      for (const status of await Promise.all(pending)) statuses.add(status);
    }
    quiet.sort((a, b) => a - b);
    during.sort((a, b) => a - b);
    const isolation = {
      quietMedian: ms(quantile(quiet, 0.5)),
      hungMedian: ms(quantile(during, 0.5)),
      hungMax: ms(during.at(-1) as number),
      answered: during.length,
      hangingThroughout,
      hungAnswers: [...statuses],
    };
    console.log(`[${kind}] other users' GraphQL with 15 engine requests hung, pool of 3:`, JSON.stringify(isolation));
    await server.stop();
    return { latency, throughput, isolation };
  } finally {
    await db.drop();
  }
}

const brokers = await startAlpacaStandIns();
const results: Record<string, unknown> = {
  at: new Date().toISOString(),
  cpus: os.cpus().length,
  loadavg: os.loadavg(),
};
try {
  for (const kind of kinds) results[kind] = await benchOne(kind, brokers);
} finally {
  await brokers.close();
}
await mkdir(path.join(ROOT, 'bench/results'), { recursive: true });
await writeFile(path.join(ROOT, 'bench/results/engine-proxy.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log('wrote bench/results/engine-proxy.json');
