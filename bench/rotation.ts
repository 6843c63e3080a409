// Key-rotation throughput on PostgreSQL: seeds N credentials (default 10,000)
// under an old key in a fresh database, rotates them to a new key, and prints
// credentials per second. Usage: npm run bench:rotation [-- --rows 10000 --users 100 --batch-size 500]
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { REQUEST_TRANSACTION_DEFAULTS } from '../src/config/load.ts';
import { defaultKeyId, Keyring } from '../src/crypto/keyring.ts';
import { openDatabase } from '../src/db/database.ts';
import { createLogger } from '../src/logger.ts';
import { rotateCredentialKeys } from '../src/services/key-rotation.ts';
import { seedUser } from '../test/support/seed.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000' },
    users: { type: 'string', default: '100' },
    'batch-size': { type: 'string', default: '500' },
    'admin-url': {
      type: 'string',
      default: process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    },
  },
});
const rows = Number(values.rows);
const users = Number(values.users);
const batchSize = Number(values['batch-size']);
const adminUrl = values['admin-url'];

const name = `bca_bench_rotation_${Date.now()}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(adminUrl);
url.pathname = `/${name}`;
const key = (bytes: Buffer) => ({ id: defaultKeyId(bytes), key: bytes });
const oldKey = key(randomBytes(32));
const newKey = key(randomBytes(32));
const db = await openDatabase(
  {
    kind: 'postgres',
    url: url.toString(),
    poolSize: 10,
    requestRole: 'app_user',
    ...REQUEST_TRANSACTION_DEFAULTS,
    // Each seeded account holds rows / users credentials, whatever the product's cap.
    maxCredentialsPerAccount: Math.max(REQUEST_TRANSACTION_DEFAULTS.maxCredentialsPerAccount, Math.ceil(rows / users)),
  },
  { migrate: true, logger: createLogger('warn') },
);
try {
  const perUser = Math.ceil(rows / users);
  const seeding = Date.now();
  for (let i = 0; i < users; i += 1) await seedUser(db, new Keyring(oldKey), perUser);
  console.log(
    `seeded ${perUser * users} credentials for ${users} users in ${((Date.now() - seeding) / 1000).toFixed(1)} s`,
  );
  const started = process.hrtime.bigint();
  const result = await rotateCredentialKeys({ db, keyring: new Keyring(newKey, [oldKey]), batchSize });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(
    JSON.stringify({
      machine: { cpus: os.cpus().length },
      rows: result.done,
      users,
      batchSize,
      seconds: Number(seconds.toFixed(2)),
      credentialsPerSecond: Math.round(result.done / seconds),
      remaining: result.remaining,
    }),
  );
} finally {
  await db.close();
  await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
  await admin.end();
}
