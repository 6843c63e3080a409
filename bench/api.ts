// API throughput and latency: the product against a raw node:http + pg
// baseline doing the same work (issue 7). Usage:
//
//   npm run bench                      # full run: ~15-20 min, hogs every core
//   npm run bench -- --quick           # smoke run: ~2 min
//   npm run bench -- --rounds 5 --conns 16,64 --workloads W1,W3 --pool 16
//   npm run bench -- --quick --profile # also writes a V8 CPU profile of the
//                                      # product to bench/results/profiles/
//   npm run bench -- --quick --product-env METRICS_PORT=0
//                                      # the product with extra variables (repeatable)
//
// Steps: create a fresh database on the PostgreSQL server named by
// BENCH_DATABASE_URL (or --admin-url); start the product exactly as users do
// (node src/main.ts, NODE_ENV=production); seed users, accounts
// and credentials through its HTTP API; start bench/baseline-server.ts on the
// same database; then for each workload × connection count, alternate product
// and baseline runs (each a warm-up plus a measured run of autocannon in a
// child process of its own) and report medians. Prints a table and writes
// bench/results/latest.json. Everything it created is removed at the end.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import pg from 'pg';
import { gql, signUp } from '../test/support/client.ts';
import { freePort } from '../test/support/ports.ts';
import {
  OPERATION_NAMES,
  randomAlpacaKeys,
  type WorkloadName,
  workloadBody,
  workloadRequest,
} from '../test/support/workloads.ts';
import type { LoadJob, LoadResult, SeededBenchUser } from './load-generator.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    conns: { type: 'string' },
    users: { type: 'string' },
    credentials: { type: 'string' },
    workloads: { type: 'string' },
    pool: { type: 'string' },
    'seed-concurrency': { type: 'string' },
    'admin-url': { type: 'string' },
    'keep-db': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'product-env': { type: 'string', multiple: true },
  },
});

const quick = flags.quick;
const settings = {
  rounds: Number(flags.rounds ?? (quick ? 1 : 3)),
  durationSeconds: Number(flags.duration ?? (quick ? 3 : 15)),
  warmupSeconds: Number(flags.warmup ?? (quick ? 1 : 5)),
  connections: (flags.conns ?? '16,64').split(',').map(Number),
  users: Number(flags.users ?? (quick ? 100 : 1000)),
  credentialsPerUser: Number(flags.credentials ?? 5),
  // W2 inserts rows; it runs last so W1 and W3 see the seeded data only.
  workloads: (flags.workloads ?? 'W1,W3,W2').split(',').map((w) => w.trim().toUpperCase()) as WorkloadName[],
  // 16: no pool queueing at 16 connections; at 64 both servers queue for the
  // same number of database connections (2 cores cannot use more anyway).
  poolSize: Number(flags.pool ?? 16),
  seedConcurrency: Number(flags['seed-concurrency'] ?? 8),
};
const adminUrl =
  flags['admin-url'] ?? process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
for (const w of settings.workloads) if (!(w in OPERATION_NAMES)) throw new Error(`unknown workload ${w}`);

type Target = 'product' | 'baseline';

interface RunningProcess {
  child: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
}

const cleanups: (() => Promise<unknown>)[] = [];
async function cleanUp(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch((e: Error) => console.error(`cleanup: ${e.message}`));
}
process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));

/** Starts a server process and resolves once `readyUrl` answers 200. */
async function startProcess(name: string, args: string[], env: Record<string, string>, readyUrl: string) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
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
    const ok = await fetch(readyUrl).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return running;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${name} did not become ready:\n${logs.join('\n')}`);
}

/** Runs `worker(i)` for i in [0, count) with at most `concurrency` at a time. */
async function inParallel(count: number, concurrency: number, worker: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await worker(next++);
    }),
  );
}

async function gqlOk(base: string, query: string, variables: Record<string, unknown> | undefined, token: string) {
  const res = await gql(base, query, variables, { token });
  if (res.status !== 200 || res.body.errors) throw new Error(`seeding failed: ${res.status} ${res.text}`);
  return res.body.data as Record<string, any>;
}

/** Users, accounts and credentials through the product's HTTP API, as clients create them. */
async function seed(base: string): Promise<SeededBenchUser[]> {
  const users: SeededBenchUser[] = [];
  const started = Date.now();
  const runId = randomBytes(4).toString('hex');
  await inParallel(settings.users, settings.seedConcurrency, async (i) => {
    const session = await signUp(base, { email: `bench-${runId}-${i}@example.test`, name: `Bench ${i}` });
    const { query, variables } = workloadRequest('W3', '');
    const account = (await gqlOk(base, query, variables, session.token)).getOrCreateAccount.account;
    // All of a user's credentials in one request (aliased storeCredential
    // calls, one transaction): the real resolver, a third of the requests.
    const count = settings.credentialsPerUser;
    if (count > 0) {
      const indexes = Array.from({ length: count }, (_, c) => c);
      await gqlOk(
        base,
        `mutation(${indexes.map((c) => `$c${c}: StoreCredentialInput!`).join(', ')}) { ` +
          `${indexes.map((c) => `c${c}: storeCredential(input: $c${c}) { id }`).join(' ')} }`,
        Object.fromEntries(
          indexes.map((c) => [
            `c${c}`,
            // Every other one without a nickname, so both display paths are exercised.
            {
              accountId: account.id,
              credentialType: 'alpaca',
              ...randomAlpacaKeys(),
              ...(c % 2 ? {} : { nickname: `Paper ${c + 1}` }),
            },
          ]),
        ),
        session.token,
      );
    }
    users.push({ token: session.token, userId: session.user.id, accountId: account.id });
    if (users.length % 100 === 0 || users.length === settings.users) {
      process.stdout.write(
        `  seeded ${users.length}/${settings.users} users (${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
      );
    }
  });
  return users;
}

/** POSTs a whole GraphQL request body (with its operationName), as the load generator does. */
async function post(url: string, body: string, token: string) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${token}` },
    body,
  });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as { data?: any; errors?: unknown[] } };
}

/** Both servers must answer the same request with the same data, and refuse a bad token alike. */
async function checkEquivalent(workload: WorkloadName, urls: Record<Target, string>, users: SeededBenchUser[]) {
  for (const user of users.slice(0, 3)) {
    const body = workloadBody(workload, user.accountId);
    const [product, baseline] = await Promise.all(
      [urls.product, urls.baseline].map((url) => post(url, body, user.token)),
    );
    const comparable = (data: any) => {
      if (workload !== 'W2') return data;
      const { id, ...rest } = data.storeCredential; // fresh ids differ, everything else must not
      return { ...rest, idIsUuid: /^[0-9a-f-]{36}$/.test(id) };
    };
    if (
      product?.status !== 200 ||
      baseline?.status !== 200 ||
      product.body.errors ||
      baseline.body.errors ||
      !isDeepStrictEqual(comparable(product.body.data), comparable(baseline.body.data))
    ) {
      throw new Error(`${workload}: the servers disagree:\nproduct:  ${product?.text}\nbaseline: ${baseline?.text}`);
    }
  }
  const body = workloadBody(workload, users[0]?.accountId ?? '');
  for (const url of Object.values(urls)) {
    const res = await post(url, body, 'not-a-session.signature');
    if (res.status !== 401) throw new Error(`${url} accepted a bogus token (${res.status})`);
  }
}

function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(import.meta.dirname, 'load-generator.ts'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    });
    child.once('message', (message: { ok: boolean; result?: LoadResult; error?: string }) =>
      message.ok ? resolve(message.result as LoadResult) : reject(new Error(message.error)),
    );
    child.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
    child.send(job);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

interface Summary {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** Summed over all rounds (any error matters), unlike the medians. */
  errors: number;
}

function summarise(results: LoadResult[]): Summary {
  return {
    rps: Math.round(median(results.map((r) => r.rps))),
    p50_ms: Number(median(results.map((r) => r.p50_ms)).toFixed(1)),
    p99_ms: Number(median(results.map((r) => r.p99_ms)).toFixed(1)),
    errors: results.reduce((n, r) => n + r.errors, 0),
  };
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const pgVersion = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
  const machine = {
    cpus: cpus.length,
    model: cpus[0]?.model.trim(),
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    postgres: pgVersion,
    loadAverageAtStart: os.loadavg()[0],
  };
  console.log(
    `machine: ${machine.cpus} CPUs (${machine.model}), ${machine.memoryGb} GB, Node ${machine.node}, PostgreSQL ${machine.postgres}`,
  );
  console.log(
    `load average at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (other work on this machine skews the figures; compare ratios)`,
  );

  const dbName = `bca_bench_api_${Date.now()}`;
  await admin.query(`CREATE DATABASE ${dbName}`);
  cleanups.push(async () => {
    if (flags['keep-db']) return console.log(`kept database ${dbName}`);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  });
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'bca-bench-'));
  cleanups.push(() => rm(workDir, { recursive: true, force: true }));

  const encryptionKey = randomBytes(32).toString('base64');
  const [productPort, baselinePort] = [await freePort(), await freePort()];
  const urls: Record<Target, string> = {
    product: `http://127.0.0.1:${productPort}`,
    baseline: `http://127.0.0.1:${baselinePort}`,
  };
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir() };

  // Exactly a production start (README): nothing else set but the pool size and
  // the log level. The server logs nothing per request at info; warn keeps a
  // stray warning storm from skewing the figures (and they are reported).
  const productEnv = {
    ...base,
    NODE_ENV: 'production',
    PORT: String(productPort),
    DATABASE_URL: dbUrl.toString(),
    DATABASE_POOL_SIZE: String(settings.poolSize),
    ENCRYPTION_KEY: encryptionKey,
    BETTER_AUTH_SECRET: randomBytes(32).toString('hex'),
    BETTER_AUTH_URL: `http://localhost:${productPort}`,
    LOG_LEVEL: 'warn',
    ...Object.fromEntries(
      (flags['product-env'] ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
  };
  console.log(
    `product: node src/main.ts on :${productPort} (NODE_ENV=production, LOG_LEVEL=warn, DATABASE_POOL_SIZE=${settings.poolSize}${(flags['product-env'] ?? []).map((kv) => `, ${kv}`).join('')})`,
  );
  // --profile adds V8's CPU profiler (written when the server exits), for
  // whoever optimises the server; without it, the command users run.
  const profileDir = path.join(import.meta.dirname, 'results', 'profiles');
  const profiling = flags.profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const product = await startProcess('product', [...profiling, 'src/main.ts'], productEnv, `${urls.product}/ready`);

  console.log(
    `seeding ${settings.users} users × 1 account × ${settings.credentialsPerUser} credentials through the API (${settings.seedConcurrency} at a time)`,
  );
  const seedStarted = Date.now();
  const users = await seed(urls.product);
  const seedSeconds = (Date.now() - seedStarted) / 1000;
  // Counted on the database itself (as its owner), not through the API.
  const check = new pg.Client({ connectionString: dbUrl.toString() });
  await check.connect();
  const counts = (
    await check.query<{ accounts: number; credentials: number }>(
      'SELECT (SELECT count(*)::int FROM user_accounts) AS accounts, (SELECT count(*)::int FROM user_credentials) AS credentials',
    )
  ).rows[0];
  await check.end();
  if (counts?.accounts !== settings.users || counts.credentials !== settings.users * settings.credentialsPerUser) {
    throw new Error(
      `seeding left ${JSON.stringify(counts)}, expected ${settings.users} accounts with ${settings.credentialsPerUser} credentials each`,
    );
  }
  const usersFile = path.join(workDir, 'users.json');
  await writeFile(usersFile, JSON.stringify(users));

  console.log(`baseline: bench/baseline-server.ts on :${baselinePort} (node:http + pg, pool ${settings.poolSize})`);
  const baseline = await startProcess(
    'baseline',
    ['bench/baseline-server.ts'],
    {
      ...base,
      PORT: String(baselinePort),
      DATABASE_URL: dbUrl.toString(),
      ENCRYPTION_KEY: encryptionKey,
      POOL_SIZE: String(settings.poolSize),
    },
    `${urls.baseline}/health`,
  );

  const samples = new Map<string, Record<Target, LoadResult[]>>();
  const total = settings.workloads.length * settings.connections.length * settings.rounds * 2;
  let done = 0;
  for (const workload of settings.workloads) {
    await checkEquivalent(workload, urls, users);
    for (const connections of settings.connections) {
      const key = `${workload}/${connections}`;
      samples.set(key, { product: [], baseline: [] });
      for (let round = 1; round <= settings.rounds; round += 1) {
        for (const target of ['product', 'baseline'] as const) {
          const logLines = (target === 'product' ? product : baseline).logs.length;
          const result = await runLoad({
            url: urls[target],
            workload,
            connections,
            warmupSeconds: settings.warmupSeconds,
            durationSeconds: settings.durationSeconds,
            usersFile,
          });
          samples.get(key)?.[target].push(result);
          const proc = target === 'product' ? product : baseline;
          if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
            throw new Error(`${target} died during ${workload}:\n${proc.logs.slice(-30).join('\n')}`);
          }
          done += 1;
          const logged = (target === 'product' ? product : baseline).logs.length - logLines;
          console.log(
            `  [${done}/${total}] ${workload} ${String(connections).padStart(3)} conns round ${round} ${target.padEnd(8)} ` +
              `${result.rps.toFixed(0).padStart(6)} req/s  p50 ${result.p50_ms} ms  p99 ${result.p99_ms} ms  errors ${result.errors}` +
              (result.errors
                ? `  ${JSON.stringify({ ...result.statusCodes, timeouts: result.timeouts, connectionErrors: result.connectionErrors, graphqlErrors: result.graphqlErrors })}`
                : '') +
              (logged ? `  (${logged} log lines)` : ''),
          );
        }
      }
    }
  }

  const order: WorkloadName[] = ['W1', 'W2', 'W3'];
  const runs = [...samples.entries()]
    .map(([key, byTarget]) => {
      const [workload, conns] = key.split('/') as [WorkloadName, string];
      const p = summarise(byTarget.product);
      const b = summarise(byTarget.baseline);
      return {
        workload,
        conns: Number(conns),
        product: p,
        baseline: b,
        ratio: Number((p.rps / b.rps).toFixed(2)),
        rounds: { product: byTarget.product, baseline: byTarget.baseline },
      };
    })
    .sort((a, b) => order.indexOf(a.workload) - order.indexOf(b.workload) || a.conns - b.conns);

  const productLogs = product.logs.filter((l) => !/listening on|migrations|shutting down|stopped/.test(l));
  await baseline.stop();
  await product.stop();

  const describeWorkload: Record<WorkloadName, string> = {
    W1: 'read accounts + credentials',
    W2: 'storeCredential',
    W3: 'getOrCreateAccount (exists)',
  };
  const row = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(i ? 6 : 31) : c.padStart(9))).join(' ');
  console.log('');
  console.log(
    `${settings.users} users × ${settings.credentialsPerUser} credentials; ${settings.rounds} round(s) per cell, ` +
      `${settings.warmupSeconds} s warm-up + ${settings.durationSeconds} s measured, product and baseline interleaved; ` +
      `medians (errors: total of all rounds). Machine: ${machine.cpus} CPUs.`,
  );
  console.log(
    row([
      'workload',
      'conns',
      'prod rps',
      'p50 ms',
      'p99 ms',
      'errors',
      'base rps',
      'p50 ms',
      'p99 ms',
      'errors',
      'prod/base',
    ]),
  );
  for (const r of runs) {
    console.log(
      row([
        `${r.workload} ${describeWorkload[r.workload]}`,
        String(r.conns),
        String(r.product.rps),
        r.product.p50_ms.toFixed(1),
        r.product.p99_ms.toFixed(1),
        String(r.product.errors),
        String(r.baseline.rps),
        r.baseline.p50_ms.toFixed(1),
        r.baseline.p99_ms.toFixed(1),
        String(r.baseline.errors),
        r.ratio.toFixed(2),
      ]),
    );
  }
  if (productLogs.length)
    console.log(
      `\nthe product logged ${productLogs.length} line(s) at warn or above, e.g.:\n${productLogs.slice(0, 5).join('\n')}`,
    );

  const output = {
    machine: { ...machine, loadAverageAtEnd: os.loadavg()[0] },
    settings: { ...settings, seedSeconds: Number(seedSeconds.toFixed(1)) },
    runs,
  };
  const resultsDir = path.join(import.meta.dirname, 'results');
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, 'latest.json'), `${JSON.stringify(output, null, 2)}\n`);
  console.log(`\nwrote bench/results/latest.json (seeding took ${seedSeconds.toFixed(0)} s)`);
  if (flags.profile)
    console.log(`CPU profile of the product (seeding included) in ${path.relative(ROOT, profileDir)}/`);
}

try {
  await main();
} finally {
  await cleanUp();
}
