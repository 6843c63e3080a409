// Runs the real server as a child process on a random port, on a fresh test
// database, and captures every log line it writes (for leak tests).

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from './databases.ts';
import { CHILD_VIOLATION_PREFIX, type RlsViolation, recordRlsViolation } from './rls-check.ts';
import { forSuite } from './suite-resource.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface TestServer {
  url: string;
  db: TestDatabase;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr, line by line. */
  logs: string[];
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Stops the server and drops its database. */
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Start through `npm start`, exactly as the README does. */
  viaNpm?: boolean;
  /** Reuse a database (e.g. to restart on the same data). */
  db?: TestDatabase;
  /** Another checkout or install of the project to run (default: this one). */
  cwd?: string;
}

export const testSecrets = {
  ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  BETTER_AUTH_SECRET: randomBytes(32).toString('hex'),
};

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const db = options.db ?? (await createTestDatabase());
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    // The default environment, as a user starts it (better-auth relaxes checks under NODE_ENV=test).
    NODE_ENV: 'development',
    PORT: '0',
    LOG_LEVEL: 'info',
    DATA_DIR: db.env.DATA_DIR ?? os.tmpdir(),
    ...testSecrets,
    ...db.env,
    ...options.env,
  };
  // This checkout's server runs with the RLS check (rls-check-register.ts); npm start and other installs as they are.
  const checked = options.cwd === undefined ? ['--import', path.join(ROOT, 'test/support/rls-check-register.ts')] : [];
  const [command, args] = options.viaNpm
    ? ['npm', ['start', '--silent']]
    : [process.execPath, [...checked, 'src/main.ts']];
  const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith(CHILD_VIOLATION_PREFIX)) {
          recordRlsViolation(JSON.parse(line.slice(CHILD_VIOLATION_PREFIX.length)) as RlsViolation);
          continue;
        }
        logs.push(line);
        // The address bound, or localhost when it listens on every interface (src/startup/listen-address.ts).
        const match = /listening on (http:\/\/[^\s"]+)/.exec(line);
        if (match?.[1]) resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited with ${code} before listening:\n${logs.join('\n')}`)));
  });

  let closed = false;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return {
    url,
    db,
    child,
    logs,
    stop,
    close: async () => {
      if (closed) return;
      closed = true;
      await stop();
      if (!options.db) await db.drop();
    },
  };
}

/**
 * Starts a server for the enclosing describe block (or file) before its tests
 * and stops it (dropping its database) after them. The handle forwards to the
 * running server.
 */
export function useServer(options: StartOptions = {}): TestServer {
  return forSuite(() => startServer(options));
}
