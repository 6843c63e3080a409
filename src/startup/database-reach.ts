// The first thing done with a PostgreSQL database at start (server and
// command-line tasks): one login through each configured URL, so that a
// database that cannot be reached is named by its variable, with the reason
// in a few words (DNS, refused, timed out, login or database refused) and
// exit status 69, instead of whatever the first query's driver error says.
// It costs one login per URL, once (logged with the other checks' times as
// databaseReach); the same login is what the migration connection and the
// pools would fail on a moment later, the first one without a timeout.
import type { DatabaseOptions } from '../db/database.ts';
import { loginFailure } from '../db/login-probe.ts';
import { DatabaseUnreachableError } from './failure.ts';

/** The pools' own connection timeout (src/db/postgres.ts). */
export const CONNECT_TIMEOUT_MS = 5_000;

/** As the driver reads it: a stray % stays as it is. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** user@host:port/database: where a URL leads, without its password or parameters. */
export function describeTarget(url: string): string {
  const u = new URL(url);
  const host = u.hostname || u.searchParams.get('host') || 'localhost';
  const user = decoded(u.username);
  const database = decoded(u.pathname.slice(1));
  return `${user ? `${user}@` : ''}${host}:${u.port || '5432'}${database ? `/${database}` : ''}`;
}

const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME']);
const NETWORK = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);

/** Why a login failed, in a few words; the driver's message only for what has no name here. */
export function unreachableReason(error: unknown, timeoutMs = CONNECT_TIMEOUT_MS): string {
  const { code, message = String(error) } = (error ?? {}) as { code?: unknown; message?: string };
  if (typeof code === 'string') {
    if (DNS.has(code)) return `its host name does not resolve (DNS, ${code})`;
    if (code === 'ECONNREFUSED') return 'connection refused: nothing listens at that address and port';
    if (code === 'ETIMEDOUT') return 'connection timed out';
    if (NETWORK.has(code)) return `no route to the host (${code})`;
    // PostgreSQL's own answers: wrong password, unknown role, no pg_hba.conf entry.
    if (code === '28P01' || code === '28000') return `login refused: ${message}`;
    if (code === '3D000') return message;
    if (code === '57P03') return `the server is starting up or shutting down: ${message}`;
    if (code === '53300') return `the server has no connection left: ${message}`;
  }
  if (message === 'timeout expired') return `no answer within ${timeoutMs / 1000} s (connection timed out)`;
  if (/Connection terminated unexpectedly/.test(message)) {
    return 'the connection closed before the login finished (is it PostgreSQL at that port?)';
  }
  return message.replace(/\s+/g, ' ').trim() || 'unknown error';
}

/** Logs in once through `url`; the reason it cannot, or undefined. */
async function tryLogin(url: string, timeoutMs: number): Promise<string | undefined> {
  const error = await loginFailure(url, timeoutMs);
  if (error === undefined) return undefined;
  let reason = unreachableReason(error, timeoutMs);
  const { password } = new URL(url);
  // No driver message quotes the password; should one ever, it stays out of
  // the line (a very short one would match ordinary words: left alone).
  for (const secret of new Set([password, decoded(password)])) {
    if (secret.length >= 4) reason = reason.split(secret).join('***');
  }
  return reason;
}

/** Throws DatabaseUnreachableError naming each URL variable whose database cannot be logged into. */
export async function checkDatabaseReachable(database: DatabaseOptions, timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
  if (database.kind !== 'postgres') return;
  const targets: [string, string][] = [['DATABASE_URL', database.url]];
  if (database.requestUrl) targets.push(['DATABASE_REQUEST_URL', database.requestUrl]);
  const failures = await Promise.all(
    targets.map(async ([variable, url]) => {
      const reason = await tryLogin(url, timeoutMs);
      return reason && `Database unreachable: ${variable} (${describeTarget(url)}): ${reason}`;
    }),
  );
  const lines = failures.filter((line): line is string => line !== undefined);
  if (lines.length > 0) throw new DatabaseUnreachableError(lines.join('\n'));
}
