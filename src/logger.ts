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

/**
 * What the log keeps of an error: its kind, codes, first line of message and
 * stack. Prisma's multi-line messages can render query arguments further
 * down; only ciphertexts and ids ever reach Prisma, but keep logs lean anyway.
 */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { value: String(error).slice(0, 200) };
  const e = error as Error & { code?: unknown; cause?: unknown };
  const firstLine = e.message.split('\n').find((l) => l.trim() !== '') ?? '';
  return {
    type: e.name,
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    message: firstLine.slice(0, 300),
    stack: e.stack?.split('\n').slice(1, 8).join('\n'),
    ...(e.cause ? { cause: describeError(e.cause) } : {}),
  };
}
