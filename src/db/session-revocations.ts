// Sign-outs heard by every instance. A trigger on auth_sessions (migration
// 20261208000000_session_revocations) sends the user id on the channel
// session_revoked whenever a session ends (better-auth ends them by DELETE:
// sign-out, revocations, a password change that revokes the others, a
// deleted user, the cleanup of expired ones) or is cut short. PostgreSQL
// delivers it to every listening connection once the change commits, and
// never for a rollback. The payload is the user id, never a token.
//
// PostgreSQL: one dedicated connection (not from a pool: LISTEN belongs to a
// session, and a transaction-pooling PgBouncer accepts it but never
// delivers), through DATABASE_LISTEN_URL. A notification sent while it is
// down is lost, so the listener says whether it can be trusted right now:
// it is fresh while a heartbeat sent less than FRESH_MS ago has been
// answered. PostgreSQL sends a connection its pending notifications before
// the answer to a later query, so that answer proves every revocation
// committed before the heartbeat was sent has arrived. TCP keepalive alone
// would take minutes to notice a silent network; the heartbeat's timeout
// notices it in about a second. Every (re)connection starts with a reset:
// what was revoked while nobody listened is unknown.
//
// PGlite: the one process that has the files open (src/db/data-dir-lock.ts)
// hears its own notifications through pglite.listen; always fresh.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Logger } from '../logger.ts';

export const SESSION_REVOKED_CHANNEL = 'session_revoked';
/** The listener's application_name, to find (or terminate) it in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = 'bca-session-listener';

const HEARTBEAT_MS = 500;
const HEARTBEAT_TIMEOUT_MS = 1000;
const FRESH_MS = 1500;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;
const CONNECT_TIMEOUT_MS = 5000;

export interface RevocationHandlers {
  /** A session of this user ended somewhere. */
  onRevoked(userId: string): void;
  /** The listener (re)connected: revocations made while it was away were not heard. */
  onReset(): void;
}

export interface RevocationWatch {
  /** Whether every revocation committed more than a moment ago has been heard. */
  fresh(): boolean;
  close(): Promise<void>;
}

const payloadOf = (channel: string, payload: string | undefined, handlers: RevocationHandlers) => {
  if (channel === SESSION_REVOKED_CHANNEL && payload) handlers.onRevoked(payload);
};

export function watchPostgres(url: string, logger: Logger, handlers: RevocationHandlers): RevocationWatch {
  let closed = false;
  let current: pg.Client | undefined;
  /** performance.now() when the latest answered heartbeat (or the LISTEN) was sent. */
  let answeredSentAt = Number.NEGATIVE_INFINITY;
  let heartbeat: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let failures = 0;
  let everConnected = false;

  const scheduleReconnect = () => {
    if (closed || retry) return;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** Math.min(failures, 10));
    retry = setTimeout(() => {
      retry = undefined;
      void connect();
    }, delay);
    retry.unref();
  };

  /** Drops a connection that failed, once; the cache is bypassed until a new one is up. */
  const drop = (client: pg.Client, reason: string) => {
    if (current !== client) return;
    current = undefined;
    answeredSentAt = Number.NEGATIVE_INFINITY;
    clearInterval(heartbeat);
    // A silent network never completes a polite end: cut the socket.
    client.connection.stream.destroy();
    if (!closed) {
      logger.warn(
        { reason },
        'session revocation listener disconnected: every request checks its session until it is back',
      );
    }
    scheduleReconnect();
  };

  /** One heartbeat; unanswered within HEARTBEAT_TIMEOUT_MS, it drops the connection. */
  const beat = async (client: pg.Client) => {
    const sentAt = performance.now();
    const timeout = setTimeout(
      () => drop(client, `heartbeat unanswered for ${HEARTBEAT_TIMEOUT_MS} ms`),
      HEARTBEAT_TIMEOUT_MS,
    );
    timeout.unref();
    try {
      await client.query('SELECT 1');
      if (current === client) answeredSentAt = Math.max(answeredSentAt, sentAt);
    } catch (error) {
      drop(client, (error as Error).message);
    } finally {
      clearTimeout(timeout);
    }
  };

  const connect = async () => {
    if (closed) return;
    const client = new pg.Client({
      connectionString: url,
      application_name: LISTENER_APPLICATION_NAME,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    });
    client.on('error', (error) => drop(client, error.message));
    client.on('end', () => drop(client, 'connection closed'));
    client.on('notification', (message) => payloadOf(message.channel, message.payload, handlers));
    try {
      await client.connect();
      const listenSentAt = performance.now();
      await client.query(`LISTEN ${SESSION_REVOKED_CHANNEL}`);
      if (closed) {
        await client.end();
        return;
      }
      current = client;
      handlers.onReset();
      answeredSentAt = listenSentAt;
    } catch (error) {
      client.removeAllListeners('end');
      client.connection.stream.destroy();
      failures += 1;
      // Once per outage at warn; the retries that follow at debug.
      logger[failures === 1 ? 'warn' : 'debug'](
        { reason: (error as Error).message, attempt: failures },
        'session revocation listener cannot connect: every request checks its session until it does',
      );
      scheduleReconnect();
      return;
    }
    logger.info(
      { after: failures },
      everConnected ? 'session revocation listener reconnected' : 'session revocation listener connected',
    );
    everConnected = true;
    failures = 0;
    // One heartbeat at a time: pg warns about a query sent while another runs.
    let beating = false;
    heartbeat = setInterval(() => {
      if (beating) return;
      beating = true;
      void beat(client).finally(() => {
        beating = false;
      });
    }, HEARTBEAT_MS);
    heartbeat.unref();
  };

  void connect();
  return {
    fresh: () => current !== undefined && performance.now() - answeredSentAt < FRESH_MS,
    close: async () => {
      closed = true;
      clearTimeout(retry);
      clearInterval(heartbeat);
      const client = current;
      current = undefined;
      if (!client) return;
      client.removeAllListeners('end');
      const ended = client.end().catch(() => {});
      const cut = new Promise<void>((resolve) => setTimeout(resolve, HEARTBEAT_TIMEOUT_MS).unref());
      await Promise.race([ended, cut]);
      client.connection.stream.destroy();
    },
  };
}

export function watchPglite(pglite: PGlite, handlers: RevocationHandlers, logger: Logger): RevocationWatch {
  let listening = false;
  const subscribed = pglite
    .listen(SESSION_REVOKED_CHANNEL, (payload) => payloadOf(SESSION_REVOKED_CHANNEL, payload, handlers))
    .then(
      (unsubscribe) => {
        listening = true;
        return unsubscribe;
      },
      (error: Error) => {
        // Never fresh then: every request checks its session.
        logger.warn({ reason: error.message }, 'session revocation listener cannot listen');
        return async () => {};
      },
    );
  return {
    fresh: () => listening,
    close: async () => {
      listening = false;
      await (await subscribed)();
    },
  };
}

/**
 * Whether a notification sent through the pool (`notify`) reaches a listener
 * on `listenUrl` within `timeoutMs`: it does not through a transaction
 * pooler, nor when the two URLs name different databases. Throws when
 * `listenUrl` cannot be connected to.
 */
export async function notificationsArrive(
  listenUrl: string,
  notify: (channel: string) => Promise<void>,
  timeoutMs: number,
): Promise<boolean> {
  const channel = `bca_listen_check_${randomBytes(8).toString('hex')}`;
  const client = new pg.Client({
    connectionString: listenUrl,
    application_name: `${LISTENER_APPLICATION_NAME}-check`,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  client.on('error', () => {});
  await client.connect();
  let timer: NodeJS.Timeout | undefined;
  try {
    const arrived = new Promise<boolean>((resolve) => {
      client.on('notification', (message) => message.channel === channel && resolve(true));
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    await client.query(`LISTEN ${channel}`);
    await notify(channel);
    return await arrived;
  } finally {
    clearTimeout(timer);
    await client.query(`UNLISTEN ${channel}`).catch(() => {});
    await client.end().catch(() => {});
  }
}
