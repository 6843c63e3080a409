// Recognising database errors that carry meaning: constraint outcomes the
// domain maps to NOT_FOUND/CONFLICT, and an unreachable database.
import { Prisma } from '../generated/prisma/client.ts';

const hasCode = (error: unknown, code: string): boolean =>
  error instanceof Prisma.PrismaClientKnownRequestError && error.code === code;

/** A unique constraint refused the write (P2002). */
export const isUniqueViolation = (error: unknown) => hasCode(error, 'P2002');

/** The row to update or delete does not exist, or RLS hides it (P2025). */
export const isRecordNotFound = (error: unknown) => hasCode(error, 'P2025');

/** A foreign key refused the write (P2003). */
export const isForeignKeyViolation = (error: unknown) => hasCode(error, 'P2003');

/** SQLSTATE of the credential cap's refusal (migration 20261202000200_credential_cap). */
const CREDENTIAL_CAP_SQLSTATE = 'BCA01';

/** The database refused a credential beyond MAX_CREDENTIALS_PER_ACCOUNT; the transaction is aborted. */
export const isCredentialCapReached = (error: unknown): boolean =>
  chain(error).some((e) => e.code === CREDENTIAL_CAP_SQLSTATE || e.originalCode === CREDENTIAL_CAP_SQLSTATE);

/** PostgreSQL cut a statement: statement_timeout (STATEMENT_TIMEOUT_MS) or a cancel request (57014). */
export const isStatementCancelled = (error: unknown): boolean =>
  chain(error).some((e) => e.code === '57014' || e.originalCode === '57014');

// Prisma: cannot reach / timed out / server closed the connection / no pool
// connection in time / could not start a transaction in time.
const PRISMA_UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028']);
// PostgreSQL: connection exceptions, shutting down or starting up, too many connections.
const SQLSTATE_UNAVAILABLE = /^(08\d{3}|57P0[1-3]|53300)$/;
const NODE_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);
const ADAPTER_UNAVAILABLE = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);
const MESSAGE_UNAVAILABLE =
  /not currently accepting connections|Connection terminated|connection timeout|timeout exceeded when trying to connect|the database system is (starting up|shutting down)/i;

/** Every error reachable from `error` through causes and Prisma's driver-adapter details. */
function chain(error: unknown, seen = new Set<unknown>()): Record<string, unknown>[] {
  if (!error || typeof error !== 'object' || seen.has(error)) return [];
  seen.add(error);
  const e = error as Record<string, unknown> & { meta?: Record<string, unknown> };
  return [e, ...chain(e.cause, seen), ...chain(e.meta?.driverAdapterError, seen), ...chain(e.originalError, seen)];
}

/** The database could not be reached or dropped the connection: worth a retry, not a bug. */
export function isDatabaseUnavailable(error: unknown): boolean {
  return chain(error).some((e) => {
    const code = typeof e.code === 'string' ? e.code : undefined;
    return (
      (code !== undefined &&
        (PRISMA_UNAVAILABLE.has(code) || SQLSTATE_UNAVAILABLE.test(code) || NODE_UNAVAILABLE.has(code))) ||
      (typeof e.kind === 'string' && ADAPTER_UNAVAILABLE.has(e.kind)) ||
      (typeof e.originalCode === 'string' && SQLSTATE_UNAVAILABLE.test(e.originalCode)) ||
      (typeof e.message === 'string' && MESSAGE_UNAVAILABLE.test(e.message))
    );
  });
}
