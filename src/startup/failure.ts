// How a process that stops on an error says so: one line, never a stack trace
// (main.ts and the CLI tasks). Configuration problems name their variable
// (ConfigError, exit 78); a database that cannot be reached names its
// variable too (DatabaseUnreachableError, exit 69); anything else is an
// operation that failed (exit 1): its message on one line (for a migration,
// the runner's own account of it).
import { ConfigError } from '../config/errors.ts';

/**
 * The database of DATABASE_URL or DATABASE_REQUEST_URL does not answer, or
 * refuses the login: the configuration may be right and the service down,
 * so exit status 69 (EX_UNAVAILABLE), one line per variable.
 */
export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
}

export function exitCodeFor(error: unknown): 78 | 69 | 1 {
  if (error instanceof ConfigError) return 78;
  return error instanceof DatabaseUnreachableError ? 69 : 1;
}

/** `task` names what failed: "start", "migrate", "rotate-key"… */
export function failureLine(task: string, error: unknown): string {
  if (error instanceof ConfigError || error instanceof DatabaseUnreachableError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  // Prisma's messages span lines ("Invalid `…` invocation:", then the database's answer): keep them all, on one.
  const text = message
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .join(' ');
  return `${task} failed: ${text || 'unknown error'}`;
}
