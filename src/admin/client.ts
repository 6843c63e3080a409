// The command-line tasks' side of the running server's admin endpoint
// (endpoint.ts): the same operations, asked of the server over
// DATA_DIR/admin.sock. Only key ids cross the socket, never a key; the one
// secret that does is a new engine client's, on its way to the task's output.
import http from 'node:http';
import { ConfigError } from '../config/errors.ts';
import type { MigrationResult } from '../db/migrations.ts';
import type { EngineClientInfo, NewEngineClient, RevokedEngineClient } from '../engine/clients.ts';
import type { RotationProgress } from '../services/key-rotation.ts';
import type { AdminOperations } from './operations.ts';
import { adminSocketPath } from './socket.ts';

interface Answer {
  status: number;
  body: unknown;
}

/** An answer other than success, as one line: the server's message. */
export class AdminRequestError extends Error {
  override name = 'AdminRequestError';
  readonly status: number;
  readonly code: string | undefined;
  constructor(status: number, code: string | undefined, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Whether the server is not (or not yet) there to answer: no socket, nobody on it, or still starting. */
export const isNotReady = (error: unknown): boolean =>
  (error instanceof AdminRequestError && error.status === 503) ||
  ['ENOENT', 'ECONNREFUSED', 'ECONNRESET'].includes((error as NodeJS.ErrnoException).code ?? '');

function request(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  onLine?: (line: unknown) => void,
): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const streamed = onLine && (res.headers['content-type'] ?? '').startsWith('application/x-ndjson');
        let text = '';
        let last: unknown;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (!streamed) return;
          const lines = text.split('\n');
          text = lines.pop() ?? '';
          for (const line of lines.filter(Boolean)) {
            last = JSON.parse(line);
            onLine(last);
          }
        });
        res.on('error', reject);
        res.on('end', () => {
          try {
            const answer = streamed ? last : text ? JSON.parse(text) : undefined;
            const error = (answer as { error?: { code?: string; message?: string } } | undefined)?.error;
            if (status >= 400 || error) {
              reject(new AdminRequestError(status, error?.code, error?.message ?? `the server answered ${status}`));
            } else resolve({ status, body: answer });
          } catch (error) {
            reject(error);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const reviveClient = <C extends EngineClientInfo>(client: C): C => ({
  ...client,
  createdAt: new Date(client.createdAt),
  revokedAt: client.revokedAt === null ? null : new Date(client.revokedAt),
});

/**
 * The operations of the server running on DATA_DIR, once it answers as
 * ready; throws when it does not (isNotReady tells whether to try again).
 */
export async function serverOperations(dataDir: string): Promise<AdminOperations> {
  const socket = adminSocketPath(dataDir);
  // Held for the process's life: the alias of a long path needs DATA_DIR's descriptor open.
  const call = (method: string, path: string, body?: unknown, onLine?: (line: unknown) => void) =>
    request(socket.path, method, path, body, onLine);
  try {
    await call('GET', '/status');
  } catch (error) {
    socket.close();
    throw error;
  }
  return {
    via: 'server',
    createEngineClient: async (name) => (await call('POST', '/engine-clients', { name })).body as NewEngineClient,
    listEngineClients: async () =>
      ((await call('GET', '/engine-clients')).body as EngineClientInfo[]).map(reviveClient),
    revokeEngineClient: async (clientId) => {
      try {
        return reviveClient((await call('POST', '/engine-clients/revoke', { clientId })).body as RevokedEngineClient);
      } catch (error) {
        if (error instanceof AdminRequestError && error.code === 'NOT_FOUND') return null;
        throw error;
      }
    },
    rotateKeys: async (keyId, batchSize, onProgress) => {
      try {
        const { body } = await call('POST', '/rotate-key', { keyId, batchSize }, (line) => {
          const { progress } = line as { progress?: RotationProgress };
          if (progress) onProgress?.(progress);
        });
        return (body as { result: RotationProgress }).result;
      } catch (error) {
        if (error instanceof AdminRequestError && error.code === 'KEY_MISMATCH') {
          throw new ConfigError(`Invalid configuration: ENCRYPTION_KEY: ${error.message}`);
        }
        throw error;
      }
    },
    migrate: async () => (await call('POST', '/migrate')).body as MigrationResult,
  };
}
