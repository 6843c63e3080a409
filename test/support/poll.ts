// Waiting for a state instead of sleeping for a guessed time: a loaded CI
// machine only makes these slower, never wrong. (test/support/engine.ts has a
// boolean `until` for its own files; this one returns what it found and says
// what it waited for when the deadline passes.)

/**
 * Calls `probe` every `intervalMs` until it returns something other than
 * undefined, null or false, and returns that; throws naming `what` after
 * `timeoutMs`.
 */
export async function eventually<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  { timeoutMs = 20_000, intervalMs = 10 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined && found !== null && found !== false) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// biome-ignore lint/suspicious/noExplicitAny: a log line is whatever pino wrote; tests read its fields freely.
type LogLine = Record<string, any>;

/** The JSON lines of a captured log (non-JSON lines, such as npm's banner, skipped). */
export function jsonLines(logs: readonly string[]): LogLine[] {
  return logs.flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}
