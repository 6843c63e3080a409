// The raw baseline for `npm run bench`: what the benchmark's three operations
// cost when written by hand with node:http and pg, and no framework at all.
// It does the same work per request as the product, the cheapest honest way:
//
//   1 round trip   the bearer token's session (auth_sessions; the signature
//                  after the last '.' is not verified, the lookup is done)
//   BEGIN
//   SELECT set_config('app.current_user_id', $1, true), set_config('role', 'app_user', true),
//          set_config('app.max_credentials_per_account', $2, true)
//   the operation as one SQL statement (two for W3), same result shape
//   COMMIT
//
// so under RLS as app_user, like the product. W2 seals both secrets with
// AES-256-GCM exactly as the product does (same layout, key id and associated
// data, so the rows it writes are genuine credentials). It dispatches on the
// GraphQL operationName: both servers receive byte-identical requests.
//
// Environment: PORT, DATABASE_URL, ENCRYPTION_KEY (base64, 32 bytes),
// POOL_SIZE (default 10), MAX_CREDENTIALS_PER_ACCOUNT (default 100, as the
// product). Not a product: no validation beyond what keeps the comparison
// fair, no logging.
import { createCipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { W1_SQL, W2_SQL, W3_INSERT, W3_SELECT } from './baseline-sql.ts';

const port = Number(process.env.PORT ?? 4100);
// The credential cap the database enforces (its trigger reads the scope), as the product sends it.
const maxCredentials = String(Number(process.env.MAX_CREDENTIALS_PER_ACCOUNT ?? 100));
const key = Buffer.from(process.env.ENCRYPTION_KEY ?? '', 'base64');
if (key.length !== 32) throw new Error('ENCRYPTION_KEY must be the base64 of 32 bytes');
// The product's default key id (src/crypto/keyring.ts defaultKeyId).
const keyId = `k-${createHash('sha256').update(key).digest().subarray(0, 8).toString('hex')}`;

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.POOL_SIZE ?? 10),
  idleTimeoutMillis: 30_000,
});

/** The product's sealing (src/crypto/cipher.ts + credential-sealing.ts), inlined. */
function seal(plaintext: string, credentialId: string, userId: string, field: 'apiKey' | 'secretKey'): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  cipher.setAAD(Buffer.from(JSON.stringify(['bca-credential-v1', credentialId, userId, field, keyId]), 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.of(1), nonce, body, cipher.getAuthTag()]);
}

function hint(apiKey: string): string {
  const chars = [...apiKey];
  return `••••${chars.slice(chars.length - Math.min(4, Math.floor(chars.length / 2))).join('')}`;
}

interface Body {
  operationName?: string;
  variables?: { input?: Record<string, unknown> };
}

type Work = (client: pg.PoolClient, userId: string, body: Body) => Promise<unknown>;

const operations: Record<string, Work> = {
  Accounts: async (client, userId) => ({ accounts: (await client.query(W1_SQL, [userId])).rows }),

  StoreCredential: async (client, userId, body) => {
    const input = body.variables?.input ?? {};
    const apiKey = String(input.apiKey ?? '').trim();
    const secretKey = String(input.secretKey ?? '').trim();
    const nickname = typeof input.nickname === 'string' && input.nickname.trim() ? input.nickname.trim() : null;
    const id = randomUUID();
    const { rows } = await client.query(W2_SQL, [
      id,
      input.accountId,
      userId,
      input.credentialType,
      nickname,
      seal(apiKey, id, userId, 'apiKey'),
      seal(secretKey, id, userId, 'secretKey'),
      keyId,
      hint(apiKey),
    ]);
    return { storeCredential: rows[0] };
  },

  GetOrCreateAccount: async (client, userId, body) => {
    const name = String(body.variables?.input?.accountName ?? 'Default Alpaca Account').trim();
    const inserted = await client.query(W3_INSERT, [userId, name]);
    const { rows } = await client.query(W3_SELECT, [userId]);
    return { getOrCreateAccount: { created: inserted.rowCount === 1, account: rows[0] } };
  },
};

function send(res: http.ServerResponse, status: number, payload: unknown): void {
  const json = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
}

const unauthenticated = { errors: [{ message: 'Not signed in', extensions: { code: 'UNAUTHENTICATED' } }] };

async function sessionUser(authorization: string | undefined): Promise<string | undefined> {
  const bearer = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
  if (!bearer) return undefined;
  const dot = bearer.lastIndexOf('.');
  const token = dot > 0 ? bearer.slice(0, dot) : bearer;
  const { rows } = await pool.query<{ user_id: string }>(
    'SELECT user_id FROM auth_sessions WHERE token = $1 AND expires_at > now()',
    [token],
  );
  return rows[0]?.user_id;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  if (req.url === '/health') return send(res, 200, { status: 'ok' });
  if (req.url !== '/graphql' || req.method !== 'POST') return send(res, 404, { error: 'not found' });
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body;
  const work = operations[body.operationName ?? ''];
  if (!work) return send(res, 400, { errors: [{ message: 'unknown operation' }] });

  const userId = await sessionUser(req.headers.authorization);
  if (!userId) return send(res, 401, unauthenticated);

  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      "SELECT set_config('app.current_user_id', $1, true), set_config('role', 'app_user', true), set_config('app.max_credentials_per_account', $2, true)",
      [userId, maxCredentials],
    );
    const data = await work(client, userId, body);
    await client.query('COMMIT');
    client.release();
    return send(res, 200, { data });
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
    throw error;
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((error: Error) => {
    process.stderr.write(`baseline: ${error.message}\n`);
    if (!res.headersSent) send(res, 500, { errors: [{ message: 'internal error' }] });
  });
});

server.listen(port, '127.0.0.1', () => process.stdout.write(`baseline listening on http://127.0.0.1:${port}\n`));

const stop = () => {
  server.close(() => void pool.end().then(() => process.exit(0)));
  server.closeIdleConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
