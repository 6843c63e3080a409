// API throughput, latency and CPU per request: the product against a raw
// node:http + pg baseline doing the same work (issue 7), and against
// PostGraphile V5 on the same database for W1 (issue 13). Usage:
//
//   npm run bench                      # full run: ~20-25 min, hogs every core
//   npm run bench -- --quick           # smoke run: ~3 min
//   npm run bench -- --rounds 5 --conns 16,64 --workloads W1,W3 --pool 16
//   npm run bench -- --quick --profile # also a V8 CPU profile of the product
//                                      # per measured run, summarised by package
//   npm run bench -- --no-postgraphile # without the PostGraphile peer
//   npm run bench -- --quick --product-env METRICS_PORT=0
//                                      # the product with extra variables (repeatable)
//   npm run bench -- --compare ../other-checkout
//                                      # also that checkout's product (its
//                                      # src/, same database and users),
//                                      # interleaved: before/after in one run
//
// Steps: create a fresh database on the PostgreSQL server named by
// BENCH_DATABASE_URL (or --admin-url); start the product exactly as users do
// (node src/main.ts, NODE_ENV=production); seed users, accounts and
// credentials through its HTTP API; start bench/baseline-server.ts and
// bench/postgraphile-server.ts on the same database; then for each workload ×
// connection count, alternate the servers' runs (each a warm-up plus a
// measured run of wrk, bench/load-generator.ts) and report medians, with each
// process's CPU per request over the measured run (utime + stime from /proc).
// Prints a table and writes bench/results/latest.json. Everything it created
// is removed at the end.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import pg from 'pg';
import { gql, signUp } from '../test/support/client.ts';
import { freePort } from '../test/support/ports.ts';
import { OPERATION_NAMES, randomAlpacaKeys, type WorkloadName, workloadRequest } from '../test/support/workloads.ts';
import {
  ensureWrk,
  type LoadResult,
  runLoad,
  type SeededBenchUser,
  type UserRequest,
  writeRequestsFile,
} from './load-generator.ts';
import { backendPids, type CpuSnapshot, snapshot, used } from './process-cpu.ts';
import {
  connectInspector,
  formatSummary,
  type Inspector,
  type ProfileSummary,
  summarise as summariseProfile,
  writeProfile,
} from './profile.ts';

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
    postgraphile: { type: 'boolean', default: true },
    compare: { type: 'string' },
    'product-env': { type: 'string', multiple: true },
  },
  allowNegative: true,
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

type Target = 'product' | 'baseline' | 'postgraphile' | 'compare';

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

/** Starts a server process and resolves once `ready()` holds. */
async function startProcess(
  name: string,
  args: string[],
  env: Record<string, string>,
  ready: () => Promise<boolean>,
  cwd = ROOT,
) {
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

/**
 * PostGraphile's W1: the same rows under its generated names (Amber preset:
 * the primary key column is `rowId`, `id` is the global node id), aliased to
 * the product's field names. nickname is the stored column: PostGraphile has
 * no "credentialType when none" rule, so the check applies it (postgraphileRows).
 */
const POSTGRAPHILE_W1 =
  'query Accounts { accounts: allUserAccounts(orderBy: CREATED_AT_ASC) { nodes { id: rowId accountName ' +
  'credentials: userCredentialsByAccountIdAndUserId(condition: { isActive: true }, orderBy: [CREATED_AT_ASC, PRIMARY_KEY_ASC]) ' +
  '{ nodes { id: rowId nickname credentialType apiKeyHint } } } } }';

/**
 * What `target` receives for `workload` from `user`: product and baseline the
 * same bytes (bearer token), PostGraphile its own query with the user id in
 * x-user-id. With `template`, W2's keys are placeholders that bench/load.lua
 * fills with fresh random keys on every request.
 */
function userRequest(target: Target, workload: WorkloadName, user: SeededBenchUser, template: boolean): UserRequest {
  if (target === 'postgraphile') {
    if (workload !== 'W1') throw new Error('PostGraphile runs W1 only');
    return {
      header: 'x-user-id',
      value: user.userId,
      body: JSON.stringify({ query: POSTGRAPHILE_W1, operationName: 'Accounts' }),
    };
  }
  const request = workloadRequest(workload, user.accountId);
  const input = request.variables?.input as Record<string, unknown> | undefined;
  if (template && workload === 'W2' && input) Object.assign(input, { apiKey: '@APIKEY@', secretKey: '@SECRETKEY@' });
  return { header: 'Authorization', value: `Bearer ${user.token}`, body: JSON.stringify(request) };
}

async function post(url: string, request: UserRequest) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', [request.header]: request.value },
    body: request.body,
  });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as { data?: any; errors?: unknown[] } };
}

/** PostGraphile's W1 answer in the product's shape (connections' nodes, the default nickname). */
function postgraphileRows(data: any) {
  return {
    accounts: data.accounts.nodes.map((a: any) => ({
      id: a.id,
      accountName: a.accountName,
      credentials: a.credentials.nodes.map((c: any) => ({ ...c, nickname: c.nickname ?? c.credentialType })),
    })),
  };
}

/** Every server must answer the same request with the same data, and refuse a bad token alike. */
async function checkEquivalent(
  workload: WorkloadName,
  targets: Target[],
  urls: Record<Target, string>,
  users: SeededBenchUser[],
) {
  const comparable = (target: Target, data: any) => {
    if (target === 'postgraphile') return postgraphileRows(data);
    if (workload !== 'W2') return data;
    const { id, ...rest } = data.storeCredential; // fresh ids differ, everything else must not
    return { ...rest, idIsUuid: /^[0-9a-f-]{36}$/.test(id) };
  };
  for (const user of users.slice(0, 3)) {
    // One set of keys for all (W2), so that the hints agree.
    const product = userRequest('product', workload, user, false);
    const answers = await Promise.all(
      targets.map((t) => post(urls[t], t === 'postgraphile' ? userRequest(t, workload, user, false) : product)),
    );
    const first = answers[0];
    for (const [i, answer] of answers.entries()) {
      const target = targets[i] as Target;
      if (
        answer.status !== 200 ||
        answer.body.errors ||
        !first?.body.data ||
        !isDeepStrictEqual(comparable(target, answer.body.data), comparable('product', first.body.data))
      ) {
        throw new Error(`${workload}: the servers disagree:\nproduct: ${first?.text}\n${target}: ${answer.text}`);
      }
    }
    if (workload === 'W1' && !first?.body.data.accounts[0]?.credentials.length) {
      throw new Error(`W1: no credentials in the answer, nothing was compared: ${first?.text}`);
    }
  }
  const [user] = users;
  if (!user) throw new Error('no seeded users');
  for (const target of targets) {
    if (target === 'postgraphile') {
      // No user id: RLS (app.current_user_id empty) must leave nothing visible.
      const res = await post(urls[target], { ...userRequest(target, workload, user, false), value: '' });
      if (res.status !== 200 || res.body.data?.accounts?.nodes?.length !== 0) {
        throw new Error(`postgraphile without a user id answered ${res.status} ${res.text}`);
      }
      continue;
    }
    const res = await post(urls[target], {
      ...userRequest(target, workload, user, false),
      value: 'Bearer not-a-session.signature',
    });
    if (res.status !== 401) throw new Error(`${target} accepted a bogus token (${res.status})`);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** A measured run: wrk's figures and each process's CPU over it, ms per request. */
interface Sample extends LoadResult {
  cpu: { server: number; postgres: number | null; load_generator: number };
}

interface Summary {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** Summed over all rounds (any error matters), unlike the medians. */
  errors: number;
  /** The server process's CPU (utime + stime) per request, median of the rounds. */
  cpu_ms_per_req: number;
  /** The same for each process taking part; postgres: the bench database's backends. */
  cpu_ms_per_req_by_process: { server: number; postgres: number | null; load_generator: number };
}

function summarise(results: Sample[]): Summary {
  const m = (f: (s: Sample) => number) => Number(median(results.map(f)).toFixed(3));
  const pgKnown = results.every((r) => r.cpu.postgres !== null);
  return {
    rps: Math.round(median(results.map((r) => r.rps))),
    p50_ms: Number(median(results.map((r) => r.p50_ms)).toFixed(1)),
    p99_ms: Number(median(results.map((r) => r.p99_ms)).toFixed(1)),
    errors: results.reduce((n, r) => n + r.errors, 0),
    cpu_ms_per_req: m((r) => r.cpu.server),
    cpu_ms_per_req_by_process: {
      server: m((r) => r.cpu.server),
      postgres: pgKnown ? m((r) => r.cpu.postgres ?? 0) : null,
      load_generator: m((r) => r.cpu.load_generator),
    },
  };
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const pgVersion = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
  const wrkBinary = ensureWrk();
  const machine = {
    cpus: cpus.length,
    model: cpus[0]?.model.trim(),
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    postgres: pgVersion,
    loadGenerator: `wrk (${wrkBinary}), 1 thread, bench/load.lua`,
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
  const ports = {
    product: await freePort(),
    baseline: await freePort(),
    postgraphile: await freePort(),
    compare: await freePort(),
  };
  const urls: Record<Target, string> = {
    product: `http://127.0.0.1:${ports.product}`,
    baseline: `http://127.0.0.1:${ports.baseline}`,
    postgraphile: `http://127.0.0.1:${ports.postgraphile}`,
    compare: `http://127.0.0.1:${ports.compare}`,
  };
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir() };
  const answers = (url: string) => () => fetch(url).then((r) => r.ok);

  // Exactly a production start (README): nothing else set but the pool size,
  // the log level and prepared statements (the bench connects directly, no
  // PgBouncer). The server logs nothing per request at info; warn keeps a
  // stray warning storm from skewing the figures (and they are reported).
  const extraEnv = (flags['product-env'] ?? []).map((kv) => [
    kv.slice(0, kv.indexOf('=')),
    kv.slice(kv.indexOf('=') + 1),
  ]);
  const productEnv = {
    ...base,
    NODE_ENV: 'production',
    PORT: String(ports.product),
    DATABASE_URL: dbUrl.toString(),
    DATABASE_POOL_SIZE: String(settings.poolSize),
    DATABASE_PREPARED_STATEMENTS: 'true',
    ENCRYPTION_KEY: encryptionKey,
    BETTER_AUTH_SECRET: randomBytes(32).toString('hex'),
    BETTER_AUTH_URL: `http://localhost:${ports.product}`,
    LOG_LEVEL: 'warn',
    ...Object.fromEntries(extraEnv),
  };
  console.log(
    `product: node src/main.ts on :${ports.product} (NODE_ENV=production, LOG_LEVEL=warn, DATABASE_POOL_SIZE=${settings.poolSize}, DATABASE_PREPARED_STATEMENTS=true${extraEnv.map(([k, v]) => `, ${k}=${v}`).join('')})`,
  );
  // --profile opens the product's inspector on loopback, to profile the
  // measured runs only; without it, the command users run.
  const inspectPort = flags.profile ? await freePort() : 0;
  const profiling = flags.profile ? [`--inspect=127.0.0.1:${inspectPort}`] : [];
  const product = await startProcess(
    'product',
    [...profiling, 'src/main.ts'],
    productEnv,
    answers(`${urls.product}/ready`),
  );
  let inspector: Inspector | undefined;
  if (flags.profile) {
    inspector = await connectInspector(inspectPort);
    cleanups.push(async () => inspector?.close());
  }

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

  console.log(`baseline: bench/baseline-server.ts on :${ports.baseline} (node:http + pg, pool ${settings.poolSize})`);
  const servers: Partial<Record<Target, RunningProcess>> = { product };
  servers.baseline = await startProcess(
    'baseline',
    ['bench/baseline-server.ts'],
    {
      ...base,
      PORT: String(ports.baseline),
      DATABASE_URL: dbUrl.toString(),
      ENCRYPTION_KEY: encryptionKey,
      POOL_SIZE: String(settings.poolSize),
    },
    answers(`${urls.baseline}/health`),
  );
  if (flags.compare) {
    const dir = path.resolve(flags.compare);
    console.log(
      `compare: ${dir}'s node src/main.ts on :${ports.compare}, started as the product (same secrets, database and users)`,
    );
    servers.compare = await startProcess(
      'compare',
      ['src/main.ts'],
      { ...productEnv, PORT: String(ports.compare), BETTER_AUTH_URL: `http://localhost:${ports.compare}` },
      answers(`${urls.compare}/ready`),
      dir,
    );
  }
  const withPostgraphile = flags.postgraphile && settings.workloads.includes('W1');
  if (withPostgraphile) {
    const version = JSON.parse(await readFile(path.join(ROOT, 'node_modules/postgraphile/package.json'), 'utf8'))
      .version as string;
    console.log(
      `postgraphile: bench/postgraphile-server.ts on :${ports.postgraphile} (PostGraphile ${version}, Amber preset, ` +
        `node:http, pool ${settings.poolSize}), W1 only. RLS through pgSettings (role app_user, app.current_user_id) ` +
        'with the user id taken from an x-user-id header: it has no better-auth, so unlike the product and the ' +
        'baseline it authenticates nothing and looks no session up',
    );
    servers.postgraphile = await startProcess(
      'postgraphile',
      ['bench/postgraphile-server.ts'],
      {
        ...base,
        PORT: String(ports.postgraphile),
        DATABASE_URL: dbUrl.toString(),
        POOL_SIZE: String(settings.poolSize),
      },
      () =>
        fetch(`${urls.postgraphile}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"query":"{ __typename }"}',
        }).then((r) => r.ok),
    );
  }
  console.log(
    'CPU per request: utime + stime from /proc over the measured run ÷ requests, for the server, the ' +
      "bench database's PostgreSQL backends (pg_stat_activity; not the cluster's background processes) and wrk" +
      (flags.profile ? ' (the profiled product runs pay for the profiler)' : ''),
  );

  const targetsFor = (w: WorkloadName): Target[] => [
    'product',
    ...(flags.compare ? (['compare'] as const) : []),
    'baseline',
    ...(w === 'W1' && withPostgraphile ? (['postgraphile'] as const) : []),
  ];
  const requestsFiles = new Map<string, string>();
  for (const workload of settings.workloads) {
    for (const target of targetsFor(workload)) {
      const file = path.join(workDir, `${workload}-${target}.tsv`);
      await writeRequestsFile(
        file,
        users.map((u) => userRequest(target, workload, u, true)),
      );
      requestsFiles.set(`${workload}/${target}`, file);
    }
  }

  const profiles: { workload: WorkloadName; conns: number; round: number; file: string; summary: ProfileSummary }[] =
    [];
  const profileDir = path.join(import.meta.dirname, 'results', 'profiles');
  if (flags.profile) await mkdir(profileDir, { recursive: true });

  const samples = new Map<string, Partial<Record<Target, Sample[]>>>();
  const total =
    settings.connections.length * settings.rounds * settings.workloads.reduce((n, w) => n + targetsFor(w).length, 0);
  let done = 0;
  for (const workload of settings.workloads) {
    const targets = targetsFor(workload);
    await checkEquivalent(workload, targets, urls, users);
    for (const connections of settings.connections) {
      const key = `${workload}/${connections}`;
      const byTarget: Partial<Record<Target, Sample[]>> = {};
      samples.set(key, byTarget);
      for (let round = 1; round <= settings.rounds; round += 1) {
        for (const target of targets) {
          const proc = servers[target] as RunningProcess;
          const serverPid = proc.child.pid as number;
          const logLines = proc.logs.length;
          const profiled = inspector && target === 'product' ? inspector : undefined;
          let before: { server: CpuSnapshot; postgres: CpuSnapshot } | undefined;
          const result = await runLoad(
            wrkBinary,
            {
              url: urls[target],
              connections,
              warmupSeconds: settings.warmupSeconds,
              durationSeconds: settings.durationSeconds,
              requestsFile: requestsFiles.get(`${workload}/${target}`) as string,
            },
            async () => {
              before = { server: snapshot([serverPid]), postgres: snapshot(await backendPids(admin, dbName)) };
              await profiled?.start();
            },
          );
          const after = { server: snapshot([serverPid]), postgres: snapshot(await backendPids(admin, dbName)) };
          if (profiled) {
            const profile = await profiled.stop();
            const file = path.join(profileDir, `${workload}-${connections}-round${round}.cpuprofile`);
            await writeProfile(file, profile);
            profiles.push({
              workload,
              conns: connections,
              round,
              file: path.relative(ROOT, file),
              summary: summariseProfile(profile),
            });
          }
          const perReq = (ms: number) => (result.requests ? ms / result.requests : 0);
          const sample: Sample = {
            ...result,
            cpu: {
              server: Number(perReq(used(before?.server ?? new Map(), after.server)).toFixed(3)),
              postgres: after.postgres.size
                ? Number(perReq(used(before?.postgres ?? new Map(), after.postgres)).toFixed(3))
                : null,
              load_generator: Number(result.loadGeneratorCpuMsPerReq.toFixed(3)),
            },
          };
          byTarget[target] = [...(byTarget[target] ?? []), sample];
          if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
            throw new Error(`${target} died during ${workload}:\n${proc.logs.slice(-30).join('\n')}`);
          }
          done += 1;
          const logged = proc.logs.length - logLines;
          console.log(
            `  [${done}/${total}] ${workload} ${String(connections).padStart(3)} conns round ${round} ${target.padEnd(12)} ` +
              `${result.rps.toFixed(0).padStart(6)} req/s  p50 ${result.p50_ms} ms  p99 ${result.p99_ms} ms  ` +
              `cpu/req ${sample.cpu.server} ms (pg ${sample.cpu.postgres ?? '?'}, wrk ${sample.cpu.load_generator})  errors ${result.errors}` +
              (result.errors
                ? `  ${JSON.stringify({ non2xx: result.non2xx, socketErrors: result.socketErrors, timeouts: result.timeouts, graphqlErrors: result.graphqlErrors })}`
                : '') +
              (logged ? `  (${logged} log lines)` : ''),
          );
        }
      }
    }
  }

  const order: WorkloadName[] = ['W1', 'W2', 'W3'];
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  const runs = [...samples.entries()]
    .map(([key, byTarget]) => {
      const [workload, conns] = key.split('/') as [WorkloadName, string];
      const p = summarise(byTarget.product ?? []);
      const b = summarise(byTarget.baseline ?? []);
      const g = byTarget.postgraphile ? summarise(byTarget.postgraphile) : undefined;
      const c = byTarget.compare ? summarise(byTarget.compare) : undefined;
      return {
        workload,
        conns: Number(conns),
        product: p,
        baseline: b,
        ...(g ? { postgraphile: g } : {}),
        ratio: ratio(p.rps, b.rps),
        ...(g ? { ratio_postgraphile: ratio(p.rps, g.rps) } : {}),
        ...(c ? { compare: c, ratio_compare: ratio(c.rps, b.rps) } : {}),
        rounds: byTarget,
      };
    })
    .sort((a, b) => order.indexOf(a.workload) - order.indexOf(b.workload) || a.conns - b.conns);

  const productLogs = product.logs.filter((l) => !/listening on|migrations|shutting down|stopped/.test(l));
  // A connected inspector would keep the product from exiting.
  inspector?.close();
  for (const s of Object.values(servers).reverse()) await s.stop();

  const describeWorkload: Record<WorkloadName, string> = {
    W1: 'read accounts + credentials',
    W2: 'storeCredential',
    W3: 'getOrCreateAccount (exists)',
  };
  const widths = [31, 5, 13, 7, 7, 7, 7, 9, 8, 8, 9, 9];
  const row = (cells: string[]) =>
    cells.map((c, i) => (i < 3 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' ');
  console.log('');
  console.log(
    `${settings.users} users × ${settings.credentialsPerUser} credentials; ${settings.rounds} round(s) per cell, ` +
      `${settings.warmupSeconds} s warm-up + ${settings.durationSeconds} s measured, servers interleaved; ` +
      `medians (errors: total of all rounds). CPU: ms per request (utime + stime) of the server process, ` +
      `the bench database's PostgreSQL backends and wrk. Machine: ${machine.cpus} CPUs.`,
  );
  console.log(
    row([
      'workload',
      'conns',
      'server',
      'req/s',
      'p50 ms',
      'p99 ms',
      'errors',
      'node cpu',
      'pg cpu',
      'wrk cpu',
      'vs base',
      'vs pgraph',
    ]),
  );
  for (const r of runs) {
    const lines: [string, Summary, string, string][] = [
      ['product', r.product, r.ratio.toFixed(2), r.ratio_postgraphile?.toFixed(2) ?? ''],
      ...(r.compare
        ? [['compare', r.compare, r.ratio_compare?.toFixed(2) ?? '', ''] as [string, Summary, string, string]]
        : []),
      ['baseline', r.baseline, '', ''],
      ...(r.postgraphile ? [['postgraphile', r.postgraphile, '', ''] as [string, Summary, string, string]] : []),
    ];
    for (const [i, [name, s, vsBase, vsPgl]] of lines.entries()) {
      console.log(
        row([
          i ? '' : `${r.workload} ${describeWorkload[r.workload]}`,
          i ? '' : String(r.conns),
          name,
          String(s.rps),
          s.p50_ms.toFixed(1),
          s.p99_ms.toFixed(1),
          String(s.errors),
          s.cpu_ms_per_req.toFixed(2),
          s.cpu_ms_per_req_by_process.postgres?.toFixed(2) ?? '?',
          s.cpu_ms_per_req_by_process.load_generator.toFixed(2),
          vsBase,
          vsPgl,
        ]),
      );
    }
  }
  if (productLogs.length)
    console.log(
      `\nthe product logged ${productLogs.length} line(s) at warn or above, e.g.:\n${productLogs.slice(0, 5).join('\n')}`,
    );
  for (const p of profiles) {
    console.log(
      `\n${formatSummary(`profile of the product, ${p.workload} ${p.conns} conns round ${p.round} (${p.file})`, p.summary)}`,
    );
  }

  const output = {
    machine: { ...machine, loadAverageAtEnd: os.loadavg()[0] },
    settings: { ...settings, postgraphile: withPostgraphile, seedSeconds: Number(seedSeconds.toFixed(1)) },
    runs,
    ...(profiles.length ? { profiles } : {}),
  };
  const resultsDir = path.join(import.meta.dirname, 'results');
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, 'latest.json'), `${JSON.stringify(output, null, 2)}\n`);
  console.log(`\nwrote bench/results/latest.json (seeding took ${seedSeconds.toFixed(0)} s)`);
}

try {
  await main();
} finally {
  await cleanUp();
}
