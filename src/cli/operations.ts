// Where a command-line task runs its operations (src/admin/operations.ts):
//
// - on PostgreSQL, on its own connection, beside any running servers;
// - on the embedded database, whose files only one process may open at a
//   time (src/db/data-dir-lock.ts): it tries DATA_DIR's lock. Got it: no
//   server runs, the task opens the files itself and holds the lock until it
//   is done. Held by a server: the server does the work for it through its
//   admin endpoint (waiting up to a minute for a server still starting).
//   Held by another task: it stops, naming that task (exit 78).
//
// The database modules are loaded only when the task opens the database
// itself: a task served by the server never loads PGlite.

import { isNotReady, serverOperations } from '../admin/client.ts';
import type { AdminOperations } from '../admin/operations.ts';
import { ConfigError } from '../config/errors.ts';
import type { Config } from '../config/load.ts';
import { Keyring } from '../crypto/keyring.ts';
import { describeHolder, lockDataDir, unlockDataDir } from '../db/data-dir-lock.ts';
import type { Logger } from '../logger.ts';

/** How long a task waits for a starting server (one that holds the lock but does not answer yet). */
const SERVER_WAIT_MS = 60_000;
const RETRY_MS = 250;

export interface OperationsOptions {
  /** The task's name, written beside the lock while it holds it ("migrate"...). */
  task: string;
  logger: Logger;
  /** Apply pending migrations when the task opens the database itself. */
  migrate: boolean;
}

/** Whether a process with this id exists (EPERM: it does, as another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function onOwnDatabase<T>(
  config: Config,
  options: OperationsOptions,
  work: (operations: AdminOperations) => Promise<T>,
): Promise<T> {
  const [{ openDatabase }, { databaseOperations }] = await Promise.all([
    import('../db/database.ts'),
    import('../admin/operations.ts'),
  ]);
  const db = await openDatabase(config.database, { migrate: options.migrate, logger: options.logger });
  try {
    return await work(
      databaseOperations(db, new Keyring(config.encryption.current, config.encryption.previous), 'task'),
    );
  } finally {
    await db.close();
  }
}

export async function withOperations<T>(
  config: Config,
  options: OperationsOptions,
  work: (operations: AdminOperations) => Promise<T>,
): Promise<T> {
  if (config.database.kind === 'postgres') return onOwnDatabase(config, options, work);
  const { dataDir } = config;
  const deadline = Date.now() + SERVER_WAIT_MS;
  for (;;) {
    const attempt = lockDataDir(dataDir, 'task', options.task);
    if (attempt.acquired) {
      try {
        return await onOwnDatabase(config, options, work);
      } finally {
        unlockDataDir(dataDir);
      }
    }
    // A holder that is gone wrote that file before the lock's present holder took it: ask again.
    const holder = attempt.holder && alive(attempt.holder.pid) ? attempt.holder : undefined;
    if (holder?.role === 'task') {
      throw new ConfigError(`DATA_DIR ${dataDir} is in use by ${describeHolder(holder)}: run this once it is done`);
    }
    if (holder?.role === 'server') {
      // Only reaching the server is retried, never the work (it may have been done).
      const operations = await serverOperations(dataDir).catch((error: unknown) => {
        if (isNotReady(error)) return undefined;
        throw error;
      });
      if (operations) return work(operations);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `DATA_DIR ${dataDir} is in use by ${describeHolder(holder)}, which did not answer on its admin socket within ${SERVER_WAIT_MS / 1000} s`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}
