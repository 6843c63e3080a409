// How a process that stops on an error says so: one line, never a stack trace
// (main.ts and the CLI tasks). Configuration problems name their variable
// (ConfigError, exit 78); anything else is an operation that failed (exit 1):
// its message on one line (for a migration, the runner's own account of it).
import { ConfigError } from '../config/errors.ts';

export function exitCodeFor(error: unknown): 78 | 1 {
  return error instanceof ConfigError ? 78 : 1;
}

/** `task` names what failed: "start", "migrate", "rotate-key"… */
export function failureLine(task: string, error: unknown): string {
  if (error instanceof ConfigError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  // Prisma's messages span lines ("Invalid `…` invocation:", then the database's answer): keep them all, on one.
  const text = message
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .join(' ');
  return `${task} failed: ${text || 'unknown error'}`;
}
