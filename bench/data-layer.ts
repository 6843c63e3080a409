// What W1's data access costs in server CPU, without HTTP or GraphQL: the
// baseline's hand-written transaction on pg against the product's RLS wrapper
// (a Prisma interactive transaction) running the query plugin-prisma builds
// for W1. It shows the floor the data layer alone sets for `npm run bench`.
// Usage: npm run bench:data-layer [-- --seconds 4 --concurrency 16 --rounds 2]

import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { REQUEST_TRANSACTION_DEFAULTS } from '../src/config/load.ts';
import { defaultKeyId, Keyring } from '../src/crypto/keyring.ts';
import { openDatabase } from '../src/db/database.ts';
import { createLogger } from '../src/logger.ts';
import { seedUser } from '../test/support/seed.ts';
import { W1_SQL } from './baseline-sql.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '2' },
    'admin-url': {
      type: 'string',
      default: process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);

const name = `bca_bench_data_layer_${Date.now()}`;
const admin = new pg.Client({ connectionString: values['admin-url'] });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(values['admin-url']);
url.pathname = `/${name}`;
const db = await openDatabase(
  {
    kind: 'postgres',
    url: url.toString(),
    poolSize: concurrency,
    requestRole: 'app_user',
    ...REQUEST_TRANSACTION_DEFAULTS,
  },
  { migrate: true, logger: createLogger('error') },
);
const pool = new pg.Pool({ connectionString: url.toString(), max: concurrency });

/** W1's selection as @pothos/plugin-prisma turns it into one Prisma query. */
const W1_SELECT = {
  id: true,
  accountName: true,
  credentials: {
    where: { isActive: true },
    orderBy: [{ createdAt: 'asc' as const }, { id: 'asc' as const }],
    select: { id: true, nickname: true, credentialType: true, apiKeyHint: true },
  },
};

try {
  const bytes = randomBytes(32);
  const { userId } = await seedUser(db, new Keyring({ id: defaultKeyId(bytes), key: bytes }), 5);

  const cases: [string, () => Promise<unknown>][] = [
    [
      'baseline: pg BEGIN; set_config; W1 SQL; COMMIT',
      async () => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query(
            "SELECT set_config('app.current_user_id', $1, true), set_config('role', 'app_user', true)",
            [userId],
          );
          await client.query(W1_SQL, [userId]);
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      },
    ],
    ['withUser, no statement (BEGIN with scope, COMMIT)', () => db.withUser(userId, async () => null)],
    ['withUser + $queryRawUnsafe(W1 SQL)', () => db.withUser(userId, (tx) => tx.$queryRawUnsafe(W1_SQL, userId))],
    [
      "withUser + userAccount.findMany (the product's W1)",
      () => db.withUser(userId, (tx) => tx.userAccount.findMany({ where: { userId }, select: W1_SELECT })),
    ],
  ];

  /** Server CPU (user + system) per operation with `concurrency` callers in a loop. */
  async function measure(work: () => Promise<unknown>, ms: number): Promise<{ cpuMs: number; perSecond: number }> {
    let done = 0;
    const end = Date.now() + ms;
    const before = process.cpuUsage();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (Date.now() < end) {
          await work();
          done += 1;
        }
      }),
    );
    const used = process.cpuUsage(before);
    return { cpuMs: (used.user + used.system) / 1000 / done, perSecond: done / (ms / 1000) };
  }

  for (const [, work] of cases) await measure(work, 1000);
  const results = new Map<string, number[]>();
  for (let round = 0; round < rounds; round += 1) {
    for (const [label, work] of cases) {
      const { cpuMs } = await measure(work, seconds * 1000);
      results.set(label, [...(results.get(label) ?? []), cpuMs]);
    }
  }
  console.log(
    `machine: ${os.cpus().length} CPUs; ${concurrency} concurrent callers, ${rounds} rounds of ${seconds} s; CPU ms per operation (min-max)`,
  );
  const baseline = Math.min(...(results.get(cases[0]![0]) ?? [NaN]));
  for (const [label, samples] of results) {
    const low = Math.min(...samples);
    console.log(`${low.toFixed(3)}-${Math.max(...samples).toFixed(3)} ms  ${(low / baseline).toFixed(1)}x  ${label}`);
  }
} finally {
  await pool.end();
  await db.close();
  await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
  await admin.end();
}
