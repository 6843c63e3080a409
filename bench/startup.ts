// What the start-up checks add to a start: starts the real server N times
// (default 7) on one database holding some credentials, reads the duration
// each start logs for its checks ("start-up checks passed", timed inside the
// process, src/startup/checks.ts) and the time from spawn to "listening",
// and prints medians. Usage:
//   npm run bench:startup [-- --db pglite|postgres --starts 7 --credentials 1000]
// PostgreSQL: a fresh database on BENCH_DATABASE_URL's server (default the local one), dropped after.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { REQUEST_TRANSACTION_DEFAULTS } from '../src/config/load.ts';
import { defaultKeyId, Keyring } from '../src/crypto/keyring.ts';
import { type DatabaseOptions, openDatabase } from '../src/db/database.ts';
import { createLogger } from '../src/logger.ts';
import { seedUser } from '../test/support/seed.ts';

const { values } = parseArgs({
  options: {
    db: { type: 'string', default: 'pglite' },
    starts: { type: 'string', default: '7' },
    credentials: { type: 'string', default: '1000' },
    'admin-url': {
      type: 'string',
      default: process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    },
  },
});
const starts = Number(values.starts);
const credentials = Number(values.credentials);
const ROOT = path.resolve(import.meta.dirname, '..');
const keyBytes = randomBytes(32);
const env: Record<string, string> = {
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '/tmp',
  PORT: '0',
  LOG_LEVEL: 'info',
  ENCRYPTION_KEY: keyBytes.toString('base64'),
  BETTER_AUTH_SECRET: randomBytes(32).toString('hex'),
};

const scratch = await mkdtemp(path.join(os.tmpdir(), 'bca-bench-startup-'));
let database: DatabaseOptions;
let drop = async () => {};
const settings = { ...REQUEST_TRANSACTION_DEFAULTS, maxCredentialsPerAccount: 1000 };
if (values.db === 'postgres') {
  const name = `bca_bench_startup_${Date.now()}`;
  const adminUrl = values['admin-url'];
  const query = async (sql: string) => {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(sql).finally(() => admin.end());
  };
  await query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  database = { kind: 'postgres', url: url.toString(), poolSize: 10, requestRole: 'app_user', ...settings };
  env.DATABASE_URL = url.toString();
  drop = () => query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
} else {
  database = { kind: 'pglite', dataDir: path.join(scratch, 'pgdata'), requestRole: 'app_user', ...settings };
  env.DATA_DIR = scratch;
}

/** One start: the logged check time, and spawn to "listening". */
function start(): Promise<{ checksMs: number; listeningMs: number; checks: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let checks: { ms: number; checks: Record<string, number> } | undefined;
    let buffered = '';
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const entry = JSON.parse(line) as { msg?: string; ms?: number; checks?: Record<string, number> };
        if (entry.msg === 'start-up checks passed') checks = { ms: entry.ms as number, checks: entry.checks ?? {} };
        if (entry.msg?.startsWith('listening on')) {
          const listeningMs = performance.now() - started;
          child.once('exit', () =>
            checks
              ? resolve({ checksMs: checks.ms, listeningMs, checks: checks.checks })
              : reject(new Error('no "start-up checks passed" line')),
          );
          child.kill('SIGTERM');
        }
      }
    });
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`server exited with ${code}`));
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

try {
  const db = await openDatabase(database, { migrate: true, logger: createLogger('warn') });
  const keyring = new Keyring({ id: defaultKeyId(keyBytes), key: keyBytes });
  const users = Math.max(1, Math.ceil(credentials / 100));
  for (let i = 0; i < users; i += 1) await seedUser(db, keyring, Math.ceil(credentials / users));
  await db.close();
  await start(); // warm-up: file system caches, nothing measured
  const runs: Awaited<ReturnType<typeof start>>[] = [];
  for (let i = 0; i < starts; i += 1) runs.push(await start());
  const names = Object.keys(runs[0]?.checks ?? {});
  console.log(
    JSON.stringify({
      database: database.kind,
      starts,
      credentials: users * Math.ceil(credentials / users),
      checksMedianMs: median(runs.map((r) => r.checksMs)),
      checksMs: runs.map((r) => r.checksMs),
      perCheckMedianMs: Object.fromEntries(names.map((n) => [n, median(runs.map((r) => r.checks[n] ?? 0))])),
      listeningMedianMs: Math.round(median(runs.map((r) => r.listeningMs))),
    }),
  );
} finally {
  await drop();
  await rm(scratch, { recursive: true, force: true });
}
