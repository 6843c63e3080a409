// The running server's admin endpoint, for the command-line tasks while the
// server has the embedded database open (no other process may open its
// files, see src/db/data-dir-lock.ts): HTTP with JSON bodies on the Unix
// socket DATA_DIR/admin.sock, which only DATA_DIR's owner can reach. Bound
// right after the server takes DATA_DIR's lock, it answers 503 STARTING
// until the database is open; the tasks wait for it.
//
//   GET  /status                  {"status": "ready", "pid"}
//   GET  /engine-clients          the clients, as `engine-client list` prints them
//   POST /engine-clients          {"name"} → the new client, with its secret (shown once)
//   POST /engine-clients/revoke   {"clientId"} → the revoked client, or 404 NOT_FOUND
//   POST /rotate-key              {"keyId", "batchSize"} → NDJSON: {"progress"} lines, then {"result"}
//                                 (or {"error"}); 409 KEY_MISMATCH when keyId is not the server's
//                                 current key, 409 ROTATION_RUNNING while another runs
//   POST /migrate                 {"applied", "alreadyApplied"}
//
// Every action is logged (never a client secret: only the task's answer
// carries it). Routed by a table of its own: src/http/routes.ts matches a
// path to one handler for every method, and these few routes differ by method.
import { chmodSync, rmSync } from 'node:fs';
import http from 'node:http';
import { cleanClientName } from '../engine/clients.ts';
import { readBody } from '../http/body.ts';
import { sendError, sendJson } from '../http/json.ts';
import { describeError, type Logger } from '../logger.ts';
import { type AdminOperations, KeyMismatchError } from './operations.ts';
import { adminSocketPath } from './socket.ts';

const BODY_LIMIT = 16 * 1024;
/** How long a shutdown waits for an admin request in progress (a key rotation stops between batches anyway). */
const CLOSE_GRACE_MS = 5_000;

export interface AdminEndpoint {
  /** Where it listens. */
  readonly socketPath: string;
  /** Starts answering with `operations` (the server's open database, its keys). */
  serve(operations: AdminOperations): void;
  close(): Promise<void>;
}

class BadInput extends Error {
  override name = 'BadInput';
}

type Body = Record<string, unknown>;

async function jsonBody(req: http.IncomingMessage): Promise<Body> {
  const read = await readBody(req, BODY_LIMIT);
  if (read.kind === 'none') return {};
  if (read.kind !== 'read') throw new BadInput(`the body must be JSON of at most ${BODY_LIMIT} bytes`);
  try {
    const parsed = JSON.parse(read.bytes.toString('utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Body;
  } catch {
    // answered below
  }
  throw new BadInput('the body must be a JSON object');
}

function stringField(body: Body, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value === '') throw new BadInput(`${field} must be a non-empty string`);
  return value;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, ops: AdminOperations) => Promise<void>;

function routes(logger: Logger): Map<string, Handler> {
  let rotating = false;
  return new Map<string, Handler>([
    ['GET /status', async (_req, res) => sendJson(res, 200, { status: 'ready', pid: process.pid })],
    ['GET /engine-clients', async (_req, res, ops) => sendJson(res, 200, await ops.listEngineClients())],
    [
      'POST /engine-clients',
      async (req, res, ops) => {
        const raw = stringField(await jsonBody(req), 'name');
        let name: string;
        try {
          name = cleanClientName(raw);
        } catch (error) {
          throw new BadInput((error as Error).message);
        }
        const created = await ops.createEngineClient(name);
        logger.info(
          { admin: 'engine-client create', clientId: created.clientId, name: created.name },
          'admin: engine client created',
        );
        sendJson(res, 200, created);
      },
    ],
    [
      'POST /engine-clients/revoke',
      async (req, res, ops) => {
        const clientId = stringField(await jsonBody(req), 'clientId');
        const revoked = await ops.revokeEngineClient(clientId);
        if (!revoked) return sendError(res, 404, { code: 'NOT_FOUND', message: 'No engine client with that id.' });
        logger.info({ admin: 'engine-client revoke', clientId }, 'admin: engine client revoked');
        sendJson(res, 200, revoked);
      },
    ],
    [
      'POST /rotate-key',
      async (req, res, ops) => {
        const body = await jsonBody(req);
        const keyId = stringField(body, 'keyId');
        const { batchSize } = body;
        if (typeof batchSize !== 'number' || !Number.isInteger(batchSize) || batchSize < 1) {
          throw new BadInput('batchSize must be a positive whole number');
        }
        if (rotating) {
          return sendError(res, 409, { code: 'ROTATION_RUNNING', message: 'A key rotation is already running.' });
        }
        rotating = true;
        let streaming = false;
        const line = (value: unknown) => {
          if (!streaming) {
            res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
            streaming = true;
          }
          res.write(`${JSON.stringify(value)}\n`);
        };
        try {
          logger.info({ admin: 'rotate-key', keyId, batchSize }, 'admin: key rotation started');
          const result = await ops.rotateKeys(keyId, batchSize, (progress) => line({ progress }));
          logger.info({ admin: 'rotate-key', keyId, ...result }, 'admin: key rotation finished');
          line({ result });
          res.end();
        } catch (error) {
          if (error instanceof KeyMismatchError) {
            logger.warn({ admin: 'rotate-key', keyId, serverKeyId: error.serverKeyId }, 'admin: key rotation refused');
            return sendError(res, 409, { code: 'KEY_MISMATCH', message: error.message });
          }
          if (!streaming) throw error;
          logger.error({ admin: 'rotate-key', error: describeError(error) }, 'admin: key rotation failed');
          line({ error: { code: 'INTERNAL_ERROR', message: 'The rotation failed: see the server log.' } });
          res.end();
        } finally {
          rotating = false;
        }
      },
    ],
    [
      'POST /migrate',
      async (_req, res, ops) => {
        const result = await ops.migrate();
        logger.info({ admin: 'migrate', applied: result.applied.length }, 'admin: migrations up to date');
        sendJson(res, 200, result);
      },
    ],
  ]);
}

/**
 * Listens on DATA_DIR/admin.sock (replacing a socket a killed server left:
 * the caller holds DATA_DIR's lock, so no live server owns it), created
 * under umask 0177 so that it is born 0600.
 */
export async function startAdminEndpoint(dataDir: string, logger: Logger): Promise<AdminEndpoint> {
  const socket = adminSocketPath(dataDir);
  const table = routes(logger);
  let operations: AdminOperations | undefined;

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const handler = table.get(`${req.method} ${url.pathname}`);
    if (!handler) return sendError(res, 404, { code: 'NOT_FOUND', message: 'No such admin route.' });
    if (!operations) {
      return sendError(res, 503, { code: 'STARTING', message: 'The server is starting: try again shortly.' });
    }
    try {
      await handler(req, res, operations);
    } catch (error) {
      if (error instanceof BadInput) return sendError(res, 400, { code: 'BAD_REQUEST', message: error.message });
      logger.error({ admin: `${req.method} ${url.pathname}`, error: describeError(error) }, 'admin request failed');
      if (res.headersSent) return void res.destroy();
      // Messages of the migration runner say what to do; others stay in the server's log.
      const message =
        error instanceof Error && error.name === 'MigrationError' ? error.message : 'It failed: see the server log.';
      sendError(res, 500, { code: 'INTERNAL_ERROR', message });
    }
  });

  rmSync(socket.path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // umask is process-wide; the socket is bound synchronously inside listen().
    const umask = process.umask(0o177);
    try {
      server.listen(socket.path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  }).catch((error: Error) => {
    socket.close();
    throw new Error(`cannot listen on ${socket.shown}: ${error.message}`);
  });
  chmodSync(socket.path, 0o600);
  logger.info({ socket: socket.shown }, 'admin endpoint for the command-line tasks listening');

  return {
    socketPath: socket.shown,
    serve: (ops) => {
      operations = ops;
    },
    close: async () => {
      const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      force.unref();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      clearTimeout(force);
      socket.close();
    },
  };
}
