// The process's one logger: structured JSON lines (pino). Redaction is the
// second line of defence; the first is never handing secrets to the logger.
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

/** Paths whose values are replaced by "[Redacted]" wherever they appear. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'res.headers["set-auth-token"]',
  '*.apiKey',
  '*.secretKey',
  '*.password',
  '*.token',
  '*.variables.*.apiKey',
  '*.variables.*.secretKey',
  '*.variables.*.password',
  '*.variables.apiKey',
  '*.variables.secretKey',
  '*.variables.password',
];

/** Synchronous stdout, for command-line tools: progress shows up as it happens. */
export const syncStdout = (): DestinationStream => pino.destination({ dest: 1, sync: true });

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    },
    destination,
  );
}

/** The database's own description of a failure (its message may quote row values: not kept). */
interface DatabaseCause {
  originalCode?: unknown;
  kind?: unknown;
}

const text = (value: unknown) => (typeof value === 'string' ? value : undefined);

/** The frames of a stack ("    at …"), without the message lines it starts with. */
function frames(stack: string | undefined): string | undefined {
  return stack
    ?.split('\n')
    .filter((line) => /^\s+at /.test(line))
    .slice(0, 10)
    .join('\n');
}

/**
 * What the log keeps of an error: its kind, code, a message that holds no
 * value the failing call carried, and the frames of its stack.
 *
 * Prisma's messages render the failing call's arguments (development) and
 * the database's own message (production: "Database error. Code: `P0001`.
 * Message: `…`", which can quote the row), and a stack starts with that
 * message. For Prisma errors the log keeps the call that failed, the model,
 * and the database's error code and kind; for others, the first line of
 * the message. Stacks keep their frames only.
 */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { value: String(error).slice(0, 200) };
  const e = error as Error & { code?: unknown; cause?: unknown; meta?: Record<string, unknown> };
  const stack = frames(e.stack);
  if (e.name.startsWith('PrismaClient') || e.name === 'DriverAdapterError') {
    const adapterError = e.meta?.driverAdapterError as { cause?: DatabaseCause } | undefined;
    const cause = (e.name === 'DriverAdapterError' ? e.cause : adapterError?.cause) as DatabaseCause | undefined;
    const call = /Invalid `([^`]+)` invocation/.exec(e.message)?.[1];
    return {
      type: e.name,
      ...(typeof e.code === 'string' ? { code: e.code } : {}),
      message: call ? `${call} failed` : 'database call failed',
      ...(text(e.meta?.modelName) ? { model: e.meta?.modelName } : {}),
      ...(text(cause?.originalCode) ? { sqlState: cause?.originalCode } : {}),
      ...(text(cause?.kind) ? { kind: cause?.kind } : {}),
      stack,
    };
  }
  const firstLine = e.message.split('\n').find((l) => l.trim() !== '') ?? '';
  return {
    type: e.name,
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    message: firstLine.slice(0, 300),
    stack,
    ...(e.cause ? { cause: describeError(e.cause) } : {}),
  };
}
