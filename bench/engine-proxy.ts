// What the engine proxy (docs/architecture/engine-proxy.md) costs, against the
// Alpaca stand-in (test/support/alpaca-stand-in.ts) in this process. Usage:
//
//   npm run bench:engine                          # PGlite and PostgreSQL
//   npm run bench:engine -- --db postgres --requests 200 --duration 10
//   npm run bench:engine -- --db postgres --compare ../before
//                                                 # also that checkout's server,
//                                                 # interleaved: before/after in one run
//   npm run bench:engine -- --db postgres --skip isolation,orders
//
// Per database kind, each server measured (this checkout's, and --compare's)
// runs on a fresh database of its own (a temporary DATA_DIR, or a database on
// BENCH_DATABASE_URL dropped at the end), started as in production (node
// src/main.ts, NODE_ENV=production, LOG_LEVEL=warn), with its engine client,
// a user, a verified credential and a grant. Then, servers interleaved:
// 1. latency: --requests rounds of GET v2/account sent to the stand-in
//    directly and through each server, alternating (so all see the same
//    noise); median and p99 of each, and of each proxied call's difference
//    from its round's direct one; and each server's CPU per proxied request
//    (all its threads' time on a CPU, /proc/<pid>/task/*/schedstat), beside a
//    GraphQL read of the same size;
// 2. round trips (PostgreSQL): the statements each server's database logged
//    for 20 proxied GETs (log_statement = all on that database, read back
//    from the server's log, /var/log/postgresql/*.log), per request;
// 3. orders (this checkout only): --requests rounds of a market buy sent
//    directly and through three grants: "loose" (guardrails that need no
//    fact: any symbol and class, no caps, short selling allowed),
//    "no lookup" (the defaults and maxOrderQuantity: the asset, read once
//    and cached) and "price lookup" (maxOrderNotional: the quote read per
//    order); added latency over the direct call and CPU per order;
// 4. throughput: wrk, 1 thread, 16 connections, --duration seconds, against
//    each server's proxy and the stand-in directly (ENGINE_RATE_LIMIT raised
//    so the limit's bookkeeping is paid but never refuses);
// 5. isolation (this checkout only): with DATABASE_POOL_SIZE=3, the median
//    latency of other users' GraphQL requests (reads and getOrCreateAccount,
//    5 at a time) without and with 15 engine requests hanging at the
//    stand-in, in 3 alternating rounds of 30 each.
// The load average is printed before and after, with a warning when it was
// above 2: a figure from a busy machine says little. Prints the figures and
// writes bench/results/engine-proxy.json. To profile the servers:
// BENCH_SERVER_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=DIR'.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { type AlpacaStandIns, startAlpacaStandIns } from '../test/support/alpaca-stand-in.ts';
import { gql } from '../test/support/client.ts';
import { accessToken, grantedCredential, marketOrder, owner, proxyPath } from '../test/support/engine.ts';
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
    compare: { type: 'string' },
    skip: { type: 'string', default: '' },
    'admin-url': {
      type: 'string',
      default: process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    },
  },
});
const REQUESTS = Number(flags.requests);
const DURATION = Number(flags.duration);
const SKIP = new Set((flags.skip as string).split(',').filter(Boolean));
const kinds = flags.db === 'both' ? (['pglite', 'postgres'] as const) : ([flags.db] as ('pglite' | 'postgres')[]);
/** The checkouts measured: this one, and --compare's. */
const SUBJECTS: { name: string; root: string }[] = [
  { name: 'this', root: ROOT },
  ...(flags.compare ? [{ name: 'compare', root: path.resolve(flags.compare) }] : []),
];

const secrets = {
  ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  BETTER_AUTH_SECRET: randomBytes(32).toString('hex'),
};

function loadAverage(when: string): number {
  const [one] = os.loadavg();
  console.log(
    `load average ${when}: ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')}`,
  );
  if ((one as number) > 2) {
    console.log(`WARNING: the load average ${when} is above 2: other work is running, and these figures say little.`);
  }
  return one as number;
}

interface BenchDatabase {
  env: Record<string, string>;
  /** PostgreSQL: the database's name (its log lines carry it). */
  name?: string;
  admin?: (sql: string) => Promise<void>;
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
  return {
    env: { DATABASE_URL: url.toString() },
    name,
    admin,
    drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

interface Server {
  url: string;
  /** The server process's CPU time so far (all its threads), in ms. */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function startServer(root: string, env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['src/main.ts'], {
    cwd: root,
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
      // Every thread's time on a CPU, in nanoseconds (/proc/<pid>/task/*/schedstat): exact, where
      // /proc/<pid>/stat counts 10 ms ticks, too coarse for one request.
      const tasks = await readdir(`/proc/${child.pid}/task`);
      const times = await Promise.all(
        tasks.map((t) => readFile(`/proc/${child.pid}/task/${t}/schedstat`, 'utf8').catch(() => '0')),
      );
      return times.reduce((sum, line) => sum + Number(line.split(' ')[0]) / 1e6, 0);
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
const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: ms(quantile(sorted, 0.5)), p99: ms(quantile(sorted, 0.99)) };
};

async function timed(run: () => Promise<Response>): Promise<number> {
  const started = performance.now();
  const res = await run();
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}: ${res.url}`);
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

/** One server measured: its database, process, client, token and a READ grant of a verified credential. */
interface Subject {
  name: string;
  root: string;
  db: BenchDatabase;
  env: Record<string, string>;
  server: Server;
  client: { clientId: string; clientSecret: string };
  token: string;
  who: Awaited<ReturnType<typeof owner>>;
  credential: { id: string; apiKey: string; secretKey: string };
}

async function startSubject(
  name: string,
  root: string,
  kind: 'pglite' | 'postgres',
  brokers: AlpacaStandIns,
): Promise<Subject> {
  const db = await createDatabase(kind);
  // The client, as the operator makes it (on PGlite before the server starts).
  const { stdout } = await run(process.execPath, ['src/cli/engine-client.ts', 'create', 'bench'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...secrets, ...db.env },
  });
  const client = JSON.parse(stdout) as { clientId: string; clientSecret: string };
  const env = { ...brokers.env, ...db.env, BROKER_TIMEOUT_MS: '30000' };
  const server = await startServer(root, { ...env, ENGINE_RATE_LIMIT: '1000000' });
  const token = await accessToken(server.url, client);
  const { who, credential } = await grantedCredential(server.url, brokers.paper, client.clientId, {
    scopes: ['READ'],
  });
  return { name, root, db, env, server, client, token, who, credential };
}

const proxiedGet = (s: Subject) => () =>
  fetch(`${s.server.url}${proxyPath(s.credential.id, 'v2/account')}`, {
    headers: { authorization: `Bearer ${s.token}` },
  });

async function latency(subjects: Subject[], brokers: AlpacaStandIns) {
  const [first] = subjects as [Subject];
  const direct = () =>
    fetch(`${brokers.paper.url}/v2/account`, {
      headers: { 'APCA-API-KEY-ID': first.credential.apiKey, 'APCA-API-SECRET-KEY': first.credential.secretKey },
    });
  for (let i = 0; i < 20; i++) {
    await timed(direct);
    for (const s of subjects) await timed(proxiedGet(s));
  }
  const directTimes: number[] = [];
  const times = new Map(subjects.map((s) => [s, { proxied: [] as number[], added: [] as number[], cpu: 0 }]));
  for (let i = 0; i < REQUESTS; i++) {
    const d = await timed(direct);
    directTimes.push(d);
    for (const s of subjects) {
      const entry = times.get(s) as { proxied: number[]; added: number[]; cpu: number };
      const cpuBefore = await s.server.cpuMs();
      const p = await timed(proxiedGet(s));
      entry.cpu += (await s.server.cpuMs()) - cpuBefore;
      entry.proxied.push(p);
      entry.added.push(p - d);
    }
  }
  const result: Record<string, unknown> = { direct: summary(directTimes) };
  for (const s of subjects) {
    const entry = times.get(s) as { proxied: number[]; added: number[]; cpu: number };
    // A GraphQL read of the same user's accounts and credentials, for comparison.
    const graphqlBefore = await s.server.cpuMs();
    for (let i = 0; i < REQUESTS; i++) {
      const res = await gql(s.server.url, '{ accounts { id credentials { id } } }', undefined, s.who.session);
      if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
    }
    result[s.name] = {
      proxied: summary(entry.proxied),
      added: summary(entry.added),
      serverCpuMsPerRequest: {
        proxied: ms(entry.cpu / REQUESTS),
        graphqlRead: ms(((await s.server.cpuMs()) - graphqlBefore) / REQUESTS),
      },
    };
  }
  return result;
}

/** The server's log, where PostgreSQL writes the statements of a database with log_statement = all. */
async function postgresLog(): Promise<string | undefined> {
  const dir = '/var/log/postgresql';
  const files = await readdir(dir).catch(() => [] as string[]);
  const logs = await Promise.all(
    files
      .filter((f) => f.endsWith('.log'))
      .map(async (f) => ({ file: path.join(dir, f), at: (await stat(path.join(dir, f))).mtimeMs })),
  );
  return logs.sort((a, b) => b.at - a.at)[0]?.file;
}

/** Statements per proxied GET, from what PostgreSQL logged for the subject's database (null: no readable log). */
async function roundTrips(s: Subject): Promise<{ perRequest: number; statements: string[] } | null> {
  const log = await postgresLog();
  if (!s.db.name || !s.db.admin || !log) return null;
  await s.db.admin(`ALTER DATABASE ${s.db.name} SET log_statement = 'all'`);
  // Only new sessions read the setting: a new server process opens new ones.
  await s.server.stop();
  s.server = await startServer(s.root, { ...s.env, ENGINE_RATE_LIMIT: '1000000' });
  for (let i = 0; i < 5; i++) await timed(proxiedGet(s));
  const before = (await stat(log)).size;
  const COUNT = 20;
  for (let i = 0; i < COUNT; i++) await timed(proxiedGet(s));
  await new Promise((r) => setTimeout(r, 300));
  const text = (await readFile(log)).subarray(before).toString('utf8');
  await s.db.admin(`ALTER DATABASE ${s.db.name} RESET log_statement`);
  const marker = `@${s.db.name} LOG:  `;
  const statements = text
    .split('\n')
    .filter((line) => line.includes(marker) && /LOG: {2}(statement|execute [^:]*):/.test(line))
    .map((line) =>
      line
        .slice(line.indexOf(marker) + marker.length)
        .replace(/\s+/g, ' ')
        .slice(0, 100),
    );
  return {
    perRequest: ms(statements.length / COUNT),
    statements: statements.slice(0, Math.ceil(statements.length / COUNT)),
  };
}

/** Added latency and CPU of orders through grants whose guardrails read nothing, a cached asset, or a quote per order. */
async function orders(s: Subject, brokers: AlpacaStandIns) {
  const variants = {
    loose: {
      assetClasses: ['US_EQUITY', 'CRYPTO', 'US_OPTION'],
      allowShortSelling: true,
      allowExtendedHours: true,
      allowAccountWideActions: true,
    },
    'no lookup': { maxOrderQuantity: '1000000' },
    'price lookup': { maxOrderNotional: '100000000' },
  };
  const grants = new Map<string, { id: string; apiKey: string; secretKey: string }>();
  for (const [name, guardrails] of Object.entries(variants)) {
    const { credential } = await grantedCredential(s.server.url, brokers.paper, s.client.clientId, {
      who: s.who,
      guardrails,
    });
    grants.set(name, credential);
  }
  const body = () => JSON.stringify(marketOrder());
  const [firstCredential] = [...grants.values()] as [{ id: string; apiKey: string; secretKey: string }];
  const direct = () =>
    fetch(`${brokers.paper.url}/v2/orders`, {
      method: 'POST',
      headers: {
        'APCA-API-KEY-ID': firstCredential.apiKey,
        'APCA-API-SECRET-KEY': firstCredential.secretKey,
        'content-type': 'application/json',
      },
      body: body(),
    });
  const through = (credential: { id: string }) => () =>
    fetch(`${s.server.url}${proxyPath(credential.id, 'v2/orders')}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
      body: body(),
    });
  for (let i = 0; i < 10; i++) {
    await timed(direct);
    for (const credential of grants.values()) await timed(through(credential));
  }
  const added = new Map([...grants.keys()].map((name) => [name, { added: [] as number[], cpu: 0 }]));
  const directTimes: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const d = await timed(direct);
    directTimes.push(d);
    for (const [name, credential] of grants) {
      const entry = added.get(name) as { added: number[]; cpu: number };
      const cpuBefore = await s.server.cpuMs();
      entry.added.push((await timed(through(credential))) - d);
      entry.cpu += (await s.server.cpuMs()) - cpuBefore;
    }
  }
  const result: Record<string, unknown> = { direct: summary(directTimes) };
  for (const [name, entry] of added) {
    result[name] = { added: summary(entry.added), serverCpuMsPerOrder: ms(entry.cpu / REQUESTS) };
  }
  return result;
}

async function isolation(s: Subject, brokers: AlpacaStandIns) {
  // A pool of 3, 15 engine requests hanging at Alpaca.
  const server = await startServer(s.root, { ...s.env, DATABASE_POOL_SIZE: '3' });
  try {
    const hangToken = await accessToken(server.url, s.client);
    const hangers = await Promise.all(Array.from({ length: 3 }, () => owner(server.url)));
    const hung = [];
    for (let i = 0; i < 15; i++) {
      hung.push(
        await grantedCredential(server.url, brokers.paper, s.client.clientId, {
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
    return {
      quietMedian: ms(quantile(quiet, 0.5)),
      hungMedian: ms(quantile(during, 0.5)),
      hungMax: ms(during.at(-1) as number),
      answered: during.length,
      hangingThroughout,
      hungAnswers: [...statuses],
    };
  } finally {
    await server.stop();
  }
}

async function benchOne(kind: 'pglite' | 'postgres', brokers: AlpacaStandIns) {
  const subjects: Subject[] = [];
  try {
    for (const { name, root } of SUBJECTS) subjects.push(await startSubject(name, root, kind, brokers));
    const [self] = subjects as [Subject];
    const result: Record<string, unknown> = {};

    result.latency = await latency(subjects, brokers);
    console.log(
      `[${kind}] latency of ${REQUESTS} sequential GET v2/account (ms), server CPU per request:`,
      JSON.stringify(result.latency),
    );
    if (kind === 'postgres' && !SKIP.has('round-trips')) {
      const trips: Record<string, unknown> = {};
      for (const s of subjects) trips[s.name] = await roundTrips(s);
      result.roundTrips = trips;
      console.log(`[${kind}] database round trips per proxied GET, from PostgreSQL's log:`, JSON.stringify(trips));
    }
    if (!SKIP.has('orders')) {
      result.orders = await orders(self, brokers);
      console.log(
        `[${kind}] ${REQUESTS} sequential market orders, added over the stand-in direct (ms), server CPU per order:`,
        JSON.stringify(result.orders),
      );
    }
    if (!SKIP.has('throughput')) {
      const throughput: Record<string, unknown> = {
        direct: await wrk(`${brokers.paper.url}/v2/account`, {
          'APCA-API-KEY-ID': self.credential.apiKey,
          'APCA-API-SECRET-KEY': self.credential.secretKey,
        }),
      };
      for (const s of subjects) {
        throughput[s.name] = await wrk(`${s.server.url}${proxyPath(s.credential.id, 'v2/account')}`, {
          authorization: `Bearer ${s.token}`,
        });
      }
      result.throughput = throughput;
      console.log(`[${kind}] wrk 16 connections, ${DURATION} s:`, JSON.stringify(throughput));
    }
    for (const s of subjects) await s.server.stop();
    if (!SKIP.has('isolation')) {
      result.isolation = await isolation(self, brokers);
      console.log(
        `[${kind}] other users' GraphQL with 15 engine requests hung, pool of 3:`,
        JSON.stringify(result.isolation),
      );
    }
    return result;
  } finally {
    for (const s of subjects) await s.db.drop();
  }
}

const brokers = await startAlpacaStandIns();
const results: Record<string, unknown> = {
  at: new Date().toISOString(),
  cpus: os.cpus().length,
  subjects: SUBJECTS,
  loadAverageBefore: loadAverage('before'),
};
try {
  for (const kind of kinds) results[kind] = await benchOne(kind, brokers);
} finally {
  await brokers.close();
}
results.loadAverageAfter = loadAverage('after');
await mkdir(path.join(ROOT, 'bench/results'), { recursive: true });
await writeFile(path.join(ROOT, 'bench/results/engine-proxy.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log('wrote bench/results/engine-proxy.json');
