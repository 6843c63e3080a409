// API throughput, latency and CPU per request: the product against a raw
// node:http + pg baseline doing the same work, against PostGraphile V5 on the
// same database for W1, and against itself with telemetry on. Usage:
//
//   npm run bench                      # full run: ~20-25 min, hogs every core
//   npm run bench -- --quick           # smoke run: ~3 min
//   npm run bench -- --rounds 5 --conns 16,64 --workloads W1,W3 --pool 16
//   npm run bench -- --telemetry       # W1 with telemetry off, metrics on,
//                                      # tracing at 100 % and 10 % (to a local
//                                      # receiver that discards), as ratios to off
//   npm run bench -- --quick --profile # also a V8 CPU profile of each product
//                                      # per measured run, summarised by package
//   npm run bench -- --no-postgraphile --no-baseline
//                                      # without those peers
//   npm run bench -- --quick --product-env METRICS_PORT=0
//                                      # the product with extra variables (repeatable)
//   npm run bench -- --variant 'semi32:NODE_OPTIONS=--max-semi-space-size=32'
//                                      # also the product with these variables, as
//                                      # `product+semi32` (repeatable; same name merges)
//   npm run bench -- --compare ../other-checkout
//                                      # also that checkout's product (its src/, same
//                                      # database and users), interleaved: before/after
//                                      # in one run (with --telemetry: its variants too)
//
// Steps: create a fresh database on the PostgreSQL server named by
// BENCH_DATABASE_URL (or --admin-url); start the product exactly as users do
// (node src/main.ts, NODE_ENV=production); seed users, accounts and
// credentials through its HTTP API; start the other servers on the same
// database (bench/api/servers.ts); measure them interleaved
// (bench/api/runner.ts) and report medians (bench/api/report.ts): a table,
// and bench/results/latest.json. Everything it created is removed at the end.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { OPERATION_NAMES, type WorkloadName } from '../test/support/workloads.ts';
import { cells, printProfiles, printTable, writeResults } from './api/report.ts';
import { measure } from './api/runner.ts';
import {
  BENCH_CREDENTIAL_CAP,
  type BenchServer,
  baseEnv,
  cleanUp,
  onCleanUp,
  type ProductVariant,
  ROOT,
  startBaseline,
  startDiscardingReceiver,
  startPostgraphile,
  startProduct,
  telemetryVariants,
} from './api/servers.ts';
import { seed } from './api/workloads.ts';
import { ensureWrk } from './load-generator.ts';

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
    baseline: { type: 'boolean', default: true },
    telemetry: { type: 'boolean', default: false },
    compare: { type: 'string' },
    'product-env': { type: 'string', multiple: true },
    variant: { type: 'string', multiple: true },
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
  // --telemetry measures W1 unless told otherwise.
  workloads: (flags.workloads ?? (flags.telemetry ? 'W1' : 'W1,W3,W2'))
    .split(',')
    .map((w) => w.trim().toUpperCase()) as WorkloadName[],
  // 16: no pool queueing at 16 connections; at 64 both servers queue for the
  // same number of database connections (2 cores cannot use more anyway).
  poolSize: Number(flags.pool ?? 16),
  seedConcurrency: Number(flags['seed-concurrency'] ?? 8),
};
const adminUrl =
  flags['admin-url'] ?? process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
for (const w of settings.workloads) if (!(w in OPERATION_NAMES)) throw new Error(`unknown workload ${w}`);

const keyValue = (kv: string): [string, string] => {
  const at = kv.indexOf('=');
  if (at < 1) throw new Error(`expected NAME=value, got ${kv}`);
  return [kv.slice(0, at), kv.slice(at + 1)];
};

/** --variant NAME:K=V, repeatable; the same NAME merges its variables. */
function customVariants(): ProductVariant[] {
  const byName = new Map<string, Record<string, string>>();
  for (const spec of flags.variant ?? []) {
    const colon = spec.indexOf(':');
    if (colon < 1) throw new Error(`--variant NAME:VAR=value, got ${spec}`);
    const [k, v] = keyValue(spec.slice(colon + 1));
    byName.set(spec.slice(0, colon), { ...byName.get(spec.slice(0, colon)), [k]: v });
  }
  return [...byName].map(([name, env]) => ({
    name: `product+${name}`,
    dir: ROOT,
    env,
    workloads: settings.workloads,
    off: 'product',
  }));
}

process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));

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
    loadAverageAtStart: os.loadavg(),
  };
  console.log(
    `machine: ${machine.cpus} CPUs (${machine.model}), ${machine.memoryGb} GB, Node ${machine.node}, PostgreSQL ${machine.postgres}`,
  );
  const loadNow = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  console.log(`load average at start: ${loadNow()} (other work on this machine skews the figures; compare ratios)`);

  const dbName = `bca_bench_api_${Date.now()}`;
  await admin.query(`CREATE DATABASE ${dbName}`);
  onCleanUp(async () => {
    if (flags['keep-db']) return console.log(`kept database ${dbName}`);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  });
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'bca-bench-'));
  onCleanUp(() => rm(workDir, { recursive: true, force: true }));
  const encryptionKey = randomBytes(32).toString('base64');

  // Exactly a production start (docs/operations.md): nothing else set but the pool size,
  // the log level, prepared statements (the bench connects directly, no
  // PgBouncer) and the credential cap (W2 stores thousands per account). The server logs nothing per request at info; warn keeps a
  // stray warning storm from skewing the figures (and they are reported).
  const extraEnv = Object.fromEntries((flags['product-env'] ?? []).map(keyValue));
  const shared = {
    ...baseEnv(),
    NODE_ENV: 'production',
    DATABASE_URL: dbUrl.toString(),
    DATABASE_POOL_SIZE: String(settings.poolSize),
    DATABASE_PREPARED_STATEMENTS: 'true',
    ENCRYPTION_KEY: encryptionKey,
    BETTER_AUTH_SECRET: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'warn',
    MAX_CREDENTIALS_PER_ACCOUNT: BENCH_CREDENTIAL_CAP,
    ...extraEnv,
  };
  console.log(
    `products: NODE_ENV=production, LOG_LEVEL=warn, DATABASE_POOL_SIZE=${settings.poolSize}, DATABASE_PREPARED_STATEMENTS=true, MAX_CREDENTIALS_PER_ACCOUNT=${BENCH_CREDENTIAL_CAP}` +
      Object.entries(extraEnv)
        .map(([k, v]) => `, ${k}=${v}`)
        .join(''),
  );
  const receiver = flags.telemetry ? await startDiscardingReceiver() : undefined;
  const compareDir = flags.compare ? path.resolve(flags.compare) : undefined;
  const variants: ProductVariant[] = [
    { name: 'product', dir: ROOT, env: {}, workloads: settings.workloads, off: 'product' },
    ...(receiver ? telemetryVariants('product', ROOT, receiver.url) : []),
    ...customVariants(),
    ...(compareDir
      ? [
          { name: 'compare', dir: compareDir, env: {}, workloads: settings.workloads, off: 'compare' },
          ...(receiver ? telemetryVariants('compare', compareDir, receiver.url) : []),
        ]
      : []),
  ];
  // --profile: each product opens its inspector on loopback, to profile the measured runs only.
  // The users are seeded through a product of this checkout that stops before
  // the measured servers start: the one that seeded would carry the seeding's
  // heap and caches into its runs (it measured slower than its own variants).
  const seeder = await startProduct({ ...(variants[0] as ProductVariant), name: 'seeder' }, shared, false);

  console.log(
    `seeding ${settings.users} users × 1 account × ${settings.credentialsPerUser} credentials through the API (${settings.seedConcurrency} at a time)`,
  );
  const seedStarted = Date.now();
  const users = await seed(seeder.url, {
    users: settings.users,
    credentialsPerUser: settings.credentialsPerUser,
    concurrency: settings.seedConcurrency,
  });
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

  await seeder.process.stop();

  const servers: BenchServer[] = [];
  for (const variant of variants) servers.push(await startProduct(variant, shared, flags.profile));
  if (flags.baseline) {
    servers.push(
      await startBaseline(
        { databaseUrl: dbUrl.toString(), encryptionKey, poolSize: settings.poolSize },
        settings.workloads,
      ),
    );
  }
  const withPostgraphile = flags.postgraphile && settings.workloads.includes('W1');
  if (withPostgraphile) {
    const version = JSON.parse(await readFile(path.join(ROOT, 'node_modules/postgraphile/package.json'), 'utf8'))
      .version as string;
    servers.push(await startPostgraphile({ databaseUrl: dbUrl.toString(), poolSize: settings.poolSize }, version));
  }
  console.log(
    'CPU per request: utime + stime from /proc over the measured run ÷ requests, for the server, the ' +
      "bench database's PostgreSQL backends (pg_stat_activity; not the cluster's background processes) and wrk" +
      (flags.profile ? ' (the profiled product runs pay for the profiler)' : ''),
  );

  const profileDir = flags.profile ? path.join(import.meta.dirname, 'results', 'profiles') : undefined;
  if (profileDir) await mkdir(profileDir, { recursive: true });
  const { samples, profiles } = await measure({
    wrk: wrkBinary,
    settings,
    servers,
    users,
    admin,
    dbName,
    workDir,
    profileDir,
  });
  const loadAtEnd = os.loadavg();

  const productLogs = servers
    .filter((s) => s.kind === 'product')
    .flatMap((s) => s.process.logs.filter((l) => !/listening on|migrations|shutting down|stopped|tracing on/.test(l)));
  for (const s of [...servers].reverse()) {
    s.inspector?.close();
    await s.process.stop();
  }

  const table = cells(samples, servers);
  console.log('');
  console.log(
    `${settings.users} users × ${settings.credentialsPerUser} credentials; ${settings.rounds} round(s) per cell, ` +
      `${settings.warmupSeconds} s warm-up + ${settings.durationSeconds} s measured, servers interleaved; ` +
      `medians (errors: total of all rounds). CPU: ms per request (utime + stime) of the server process, ` +
      `the bench database's PostgreSQL backends and wrk. vs off: a product variant's req/s over its checkout's ` +
      `plain product's (cpu vs off: Node CPU per request over it). Machine: ${machine.cpus} CPUs; ` +
      `load average at start ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${loadNow()}.`,
  );
  printTable(table);
  if (receiver) console.log(`\nthe discarding OTLP receiver took ${receiver.exports()} export request(s)`);
  if (productLogs.length)
    console.log(
      `\nthe products logged ${productLogs.length} line(s) at warn or above, e.g.:\n${productLogs.slice(0, 5).join('\n')}`,
    );
  printProfiles(profiles);

  const file = await writeResults({
    machine: { ...machine, loadAverageAtEnd: loadAtEnd },
    settings: {
      ...settings,
      postgraphile: withPostgraphile,
      telemetry: flags.telemetry,
      servers: servers.map((s) => s.name),
      seedSeconds: Number(seedSeconds.toFixed(1)),
    },
    runs: table,
    ...(profiles.length ? { profiles } : {}),
  });
  console.log(`\nwrote ${path.relative(ROOT, file)} (seeding took ${seedSeconds.toFixed(0)} s)`);
}

try {
  await main();
} finally {
  await cleanUp();
}
