// DATA_DIR's lock (src/db/data-dir-lock.ts), the guard of the embedded
// database's files: one holder among processes that start at the same
// moment, none of its own twice, released by the kernel when a holder is
// killed, and the one place PGlite is opened takes it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataDirInUseError, leaseDataDir, lockDataDir, readHolder, unlockDataDir } from '../../src/db/data-dir-lock.ts';

const LOCK_MODULE = path.resolve(import.meta.dirname, '../../src/db/data-dir-lock.ts');

let dataDir: string;
beforeEach(async () => {
  dataDir = path.join(await mkdtemp(path.join(os.tmpdir(), 'bca-lock-')), 'data');
});
afterEach(async () => {
  unlockDataDir(dataDir);
  await rm(path.dirname(dataDir), { recursive: true, force: true });
});

/**
 * A process that tries the lock at `at` (epoch ms), prints "acquired" or
 * "refused", and holds what it got until it is killed (or for `holdMs`).
 */
function contender(at: number, holdMs = 60_000): { child: ChildProcess; outcome: Promise<string> } {
  const script = `
    const { lockDataDir } = await import(${JSON.stringify(LOCK_MODULE)});
    await new Promise((r) => setTimeout(r, Math.max(0, ${at} - Date.now())));
    const attempt = lockDataDir(${JSON.stringify(dataDir)}, 'task', 'contender');
    process.stdout.write(attempt.acquired ? 'acquired\\n' : 'refused\\n');
    setTimeout(() => {}, ${holdMs});`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const outcome = new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.once('exit', (code) => reject(new Error(`contender exited (${code}) before answering: ${err}`)));
  });
  return { child, outcome };
}

const stopAll = (children: ChildProcess[]) =>
  Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );

describe('DATA_DIR lock', () => {
  it('goes to exactly one of 8 processes trying at the same millisecond, in each of 3 rounds', async () => {
    for (let round = 0; round < 3; round += 1) {
      const at = Date.now() + 1500;
      const contenders = Array.from({ length: 8 }, () => contender(at));
      try {
        const outcomes = await Promise.all(contenders.map((c) => c.outcome));
        expect(
          outcomes.filter((o) => o === 'acquired'),
          `round ${round}: ${outcomes.join(', ')}`,
        ).toHaveLength(1);
        expect(outcomes.filter((o) => o === 'refused')).toHaveLength(7);
        // The holder wrote itself down; the others can name it.
        const holder = readHolder(dataDir);
        const winner = contenders.find((_, i) => outcomes[i] === 'acquired');
        expect(holder).toMatchObject({ pid: winner?.child.pid, role: 'task', task: 'contender' });
      } finally {
        await stopAll(contenders.map((c) => c.child));
      }
    }
  }, 60_000);

  it('is free again the moment its holder is killed (SIGKILL)', async () => {
    const holder = contender(Date.now());
    expect(await holder.outcome).toBe('acquired');
    expect(lockDataDir(dataDir, 'server')).toMatchObject({ acquired: false, holder: { pid: holder.child.pid } });
    await stopAll([holder.child]);
    expect(lockDataDir(dataDir, 'server')).toEqual({ acquired: true });
    expect(readHolder(dataDir)).toMatchObject({ pid: process.pid, role: 'server' });
  });

  it('is not taken twice by one process; creates DATA_DIR 0700; a lease opens the files once', async () => {
    expect(lockDataDir(dataDir, 'server')).toEqual({ acquired: true });
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect(lockDataDir(dataDir, 'task')).toMatchObject({ acquired: false, holder: { pid: process.pid } });
    // Under the server's lock: one lease at a time, and the lock outlives it.
    const lease = leaseDataDir(dataDir);
    expect(() => leaseDataDir(dataDir)).toThrow(DataDirInUseError);
    lease.release();
    leaseDataDir(dataDir).release();
    expect(lockDataDir(dataDir, 'task').acquired).toBe(false);
    unlockDataDir(dataDir);
    // A lease without a lock takes one for itself and gives it back.
    const own = leaseDataDir(dataDir);
    expect(JSON.parse(await readFile(path.join(dataDir, 'server.lock.json'), 'utf8'))).toMatchObject({
      pid: process.pid,
      role: 'task',
    });
    own.release();
    expect(lockDataDir(dataDir, 'task')).toEqual({ acquired: true });
  });

  it('refuses a lease while another process holds the lock, naming it', async () => {
    const other = contender(Date.now());
    try {
      expect(await other.outcome).toBe('acquired');
      expect(() => leaseDataDir(dataDir)).toThrow(
        `DATA_DIR ${dataDir} is in use by npm run contender (pid ${other.child.pid})`,
      );
    } finally {
      await stopAll([other.child]);
    }
  });
});
