// CPU time of processes from /proc/<pid>/stat (utime + stime), for the
// bench's per-request CPU columns. Linux only; a pid that is not readable
// (exited, or PostgreSQL on another machine) counts as absent.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type pg from 'pg';

const TICK_MS = 1000 / (Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100);

/** utime + stime of `pid` in ms, or undefined when it cannot be read. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ')' that closes the command name: utime is field 14, stime 15 (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** CPU ms of a set of pids at one moment. */
export type CpuSnapshot = Map<number, number>;

export function snapshot(pids: number[]): CpuSnapshot {
  const s: CpuSnapshot = new Map();
  for (const pid of pids) {
    const ms = cpuMs(pid);
    if (ms !== undefined) s.set(pid, ms);
  }
  return s;
}

/** CPU used between two snapshots; a pid first seen in `after` started in between and counts whole. */
export function used(before: CpuSnapshot, after: CpuSnapshot): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

/**
 * The server processes (backends) of one database, from pg_stat_activity,
 * that run on this machine (their /proc entry is a postgres process).
 * Background processes (WAL writer, checkpointer, ...) are not included.
 */
export async function backendPids(admin: pg.Client, database: string): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [
    database,
  ]);
  return rows
    .map((r) => r.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
      } catch {
        return false;
      }
    });
}
