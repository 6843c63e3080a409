// Who may open the embedded database's files: the one process that holds
// DATA_DIR's lock. PGlite takes no lock of its own (its postmaster.pid carries
// a fixed fake pid), and two processes that open one data directory lose each
// other's writes without an error.
//
// The lock is SQLite's exclusive lock on DATA_DIR/server.lock, through Node's
// built-in node:sqlite: an fcntl lock, which the kernel drops when the process
// dies however it dies (SIGKILL included), so a killed server never leaves a
// stale lock behind, and which SQLite also refuses to a second connection of
// the same process. Hand-written alternatives did not hold: pid files race
// and pids are reused, binding a socket as the lock let two processes in, and
// Node has no flock. The busy timeout matters: without it, processes started
// in the same instant could all fail and leave nobody holding it.
//
// The holder writes who it is (pid, server or task, since when) beside the
// lock, so that a refused process can name it. That file is only a label:
// the lock decides.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/** The embedded database's files, inside DATA_DIR. */
export const PGDATA_DIR = 'pgdata';
const LOCK_FILE = 'server.lock';
const HOLDER_FILE = 'server.lock.json';
/** How long SQLite waits on a lock being taken or released at the same moment. */
const BUSY_TIMEOUT_MS = 500;

export type LockRole = 'server' | 'task';

/** Who holds a DATA_DIR, as it wrote itself down. */
export interface LockHolder {
  pid: number;
  role: LockRole;
  startedAt: string;
  /** The command-line task ("migrate", "rotate-key", "engine-client"), for a task. */
  task?: string;
}

interface HeldLock {
  // Referenced for as long as the lock is held: a collected connection would release it.
  connection: DatabaseSync;
  holder: LockHolder;
  /** Whether this process has the database files open (at most once). */
  filesOpen: boolean;
}

const held = new Map<string, HeldLock>();

export type LockAttempt = { acquired: true } | { acquired: false; holder: LockHolder | undefined };

/** DATA_DIR of an embedded database's data directory (DATA_DIR/pgdata). */
export const dataDirOf = (pgdataDir: string): string => path.dirname(path.resolve(pgdataDir));

/**
 * Takes DATA_DIR's lock for this process, creating DATA_DIR (mode 0700, with
 * its parents) when it does not exist. Refused when another process holds
 * it, or this one already does; then `holder` says who (when it wrote it).
 */
export function lockDataDir(dataDir: string, role: LockRole, task?: string): LockAttempt {
  const dir = path.resolve(dataDir);
  const mine = held.get(dir);
  if (mine) return { acquired: false, holder: mine.holder };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const connection = new DatabaseSync(path.join(dir, LOCK_FILE), { timeout: BUSY_TIMEOUT_MS });
  try {
    connection.exec('PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE');
  } catch (error) {
    connection.close();
    if ((error as { errcode?: number }).errcode === 5 /* SQLITE_BUSY */) {
      return { acquired: false, holder: readHolder(dir) };
    }
    throw error;
  }
  const holder: LockHolder = { pid: process.pid, role, startedAt: new Date().toISOString(), ...(task ? { task } : {}) };
  // Written whole then renamed, so a reader never sees half of it.
  const temporary = path.join(dir, `${HOLDER_FILE}.${process.pid}`);
  writeFileSync(temporary, `${JSON.stringify(holder)}\n`, { mode: 0o600 });
  renameSync(temporary, path.join(dir, HOLDER_FILE));
  held.set(dir, { connection, holder, filesOpen: false });
  return { acquired: true };
}

/** Releases a lock this process took (a no-op otherwise). */
export function unlockDataDir(dataDir: string): void {
  const dir = path.resolve(dataDir);
  const mine = held.get(dir);
  if (!mine) return;
  held.delete(dir);
  rmSync(path.join(dir, HOLDER_FILE), { force: true });
  mine.connection.close();
}

/** Who holds DATA_DIR, as written beside the lock (undefined: not written, or unreadable). */
export function readHolder(dataDir: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path.join(path.resolve(dataDir), HOLDER_FILE), 'utf8')) as LockHolder;
    return Number.isInteger(parsed.pid) && (parsed.role === 'server' || parsed.role === 'task') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** "a running server (pid 42)", "npm run migrate (pid 42)", or "another process". */
export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return 'another process';
  if (holder.role === 'server') return `a running server (pid ${holder.pid})`;
  return `${holder.task ? `npm run ${holder.task}` : 'a command-line task'} (pid ${holder.pid})`;
}

/** A DATA_DIR that another process (or this one, already) has the embedded database of open. */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
  readonly dataDir: string;
  readonly holder: LockHolder | undefined;
  constructor(dataDir: string, holder: LockHolder | undefined) {
    super(`DATA_DIR ${dataDir} is in use by ${describeHolder(holder)}`);
    this.dataDir = dataDir;
    this.holder = holder;
  }
}

/**
 * The right to open DATA_DIR's database files, for as long as the lease
 * lasts: under the lock this process holds (a server's), or under one taken
 * for the lease and released with it. Throws DataDirInUseError when another
 * process holds the lock, or this one has the files open already.
 */
export function leaseDataDir(dataDir: string): { release(): void } {
  const dir = path.resolve(dataDir);
  let lock = held.get(dir);
  const ownLock = !lock;
  if (!lock) {
    const attempt = lockDataDir(dir, 'task');
    if (!attempt.acquired) throw new DataDirInUseError(dir, attempt.holder);
    lock = held.get(dir) as HeldLock;
  }
  if (lock.filesOpen) throw new DataDirInUseError(dir, lock.holder);
  lock.filesOpen = true;
  let released = false;
  const leased = lock;
  return {
    release: () => {
      if (released) return;
      released = true;
      leased.filesOpen = false;
      if (ownLock) unlockDataDir(dir);
    },
  };
}
