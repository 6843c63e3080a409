// The frame of the command-line tasks (migrate, rotate-key, engine-client):
// the server's configuration module, with the secrets the task needs (no
// development secret is generated or written by a task, see SecretsSource),
// and a failure as one line: exit 78 for configuration and 69 for an
// unreachable database, naming the variable, 1 for an operation that failed;
// never a stack trace.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { SecretsSource } from '../config/dev-secrets.ts';
import { type Config, loadConfig } from '../config/load.ts';
import { exitCodeFor, failureLine } from '../startup/failure.ts';

/** Wrong arguments: the message (with the usage) alone, exit 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** `parse` reads the arguments first (a wrong one is reported before anything else), then `work` runs. */
export async function runTask<A>(
  name: string,
  secrets: SecretsSource,
  parse: () => A,
  work: (config: Config, args: A) => Promise<void>,
): Promise<void> {
  try {
    const args = parse();
    const config = await loadConfig(process.env, undefined, secrets);
    // As at the server's start: an unreachable database is named by its variable (exit 69).
    await (await import('../startup/database-reach.ts')).checkDatabaseReachable(config.database);
    await work(config, args);
  } catch (error) {
    process.stderr.write(`${error instanceof UsageError ? error.message : failureLine(name, error)}\n`);
    process.exitCode = error instanceof UsageError ? 1 : exitCodeFor(error);
  }
}

/** parseArgs, with a wrong argument reported as a UsageError instead of a stack trace. */
export function parseTaskArgs<T extends ParseArgsConfig>(config: T, usage?: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError(`${(error as Error).message}${usage ? `\n${usage}` : ''}`);
  }
}
