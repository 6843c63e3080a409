// A real PgBouncer in transaction-pooling mode in front of the test
// PostgreSQL server, for the scale-out tests: generated config, free port,
// temp directory, its own process (stopped by stop()).
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { withDatabase } from './databases.ts';
import { freePort } from './ports.ts';

/** The pgbouncer binary: on PATH, or where Debian puts it (/usr/sbin is not on every PATH). */
export function findPgBouncer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = path.join(dir, 'pgbouncer');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** [major, minor] of `pgbouncer --version` ("PgBouncer 1.18.0"). */
export function pgBouncerVersion(bin: string): [number, number] {
  const out = execFileSync(bin, ['--version'], { encoding: 'utf8' });
  const match = /PgBouncer (\d+)\.(\d+)/.exec(out);
  if (!match) throw new Error(`cannot read the PgBouncer version from: ${out}`);
  return [Number(match[1]), Number(match[2])];
}

export interface PgBouncer {
  port: number;
  version: [number, number];
  /** `url` (a database on the upstream server) rewritten to go through PgBouncer. */
  through(url: string): string;
  /** Runs a command on PgBouncer's admin console (SHOW POOLS, SHOW CLIENTS, ...). */
  admin(command: string): Promise<Record<string, unknown>[]>;
  /** PgBouncer's log so far. */
  logs(): string;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** Any URL on the upstream server; its host, port and user are used. */
  upstreamUrl: string;
  /** Server connections per database/user pair: small, so clients share them. */
  poolSize: number;
}

export async function startPgBouncer(bin: string, options: PgBouncerOptions): Promise<PgBouncer> {
  const upstream = new URL(options.upstreamUrl);
  const user = decodeURIComponent(upstream.username || 'postgres');
  const version = pgBouncerVersion(bin);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bca-pgbouncer-'));
  const port = await freePort();
  // PgBouncer refuses to run as root; it switches to the postgres account
  // itself (-u), which then needs to own its directory.
  const asRoot = process.getuid?.() === 0;
  const config = [
    '[databases]',
    // The fallback entry: any database name goes to the same name upstream.
    `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    // The local server trusts local connections; PgBouncer only needs to know the user.
    'auth_type = trust',
    `auth_file = ${path.join(dir, 'userlist.txt')}`,
    `admin_users = ${user}`,
    'pool_mode = transaction',
    `default_pool_size = ${options.poolSize}`,
    'reserve_pool_size = 0',
    'max_client_conn = 500',
    // node-postgres sends no such parameters today; tolerate them if it ever does.
    'ignore_startup_parameters = extra_float_digits,options',
    // Prisma's pg adapter uses unnamed statements only (no statementNameGenerator),
    // which transaction pooling handles in every version; 1.21+ can also pool
    // named prepared statements, so allow them there.
    ...(version[0] > 1 || version[1] >= 21 ? ['max_prepared_statements = 200'] : []),
    `logfile = ${path.join(dir, 'pgbouncer.log')}`,
    `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'pgbouncer.ini'), config);
  await writeFile(path.join(dir, 'userlist.txt'), `"${user}" ""\n`);
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    await chown(dir, uid, gid);
  }

  const child = spawn(bin, [...(asRoot ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const through = (url: string) => {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(port);
    return u.toString();
  };
  const admin = async (command: string) => {
    // The admin console speaks the simple query protocol only: no parameters.
    const client = new pg.Client({ connectionString: through(withDatabase(options.upstreamUrl, 'pgbouncer')) });
    await client.connect();
    try {
      return (await client.query(command)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited with ${child.exitCode}:\n${output}`);
    try {
      await admin('SHOW VERSION');
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`pgbouncer did not come up: ${(error as Error).message}\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { port, version, through, admin, logs: () => output, stop };
}
