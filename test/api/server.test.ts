// The server as an operator sees it: probes and GraphiQL (the composed app,
// in-process), and what only a real process shows: configuration refusals,
// a production start, and graceful shutdown through the README's start command.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { gql, signUp } from '../support/client.ts';
import { createTestDatabase, dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';
import { eventually } from '../support/poll.ts';
import { freePort } from '../support/ports.ts';
import { startServer, testSecrets } from '../support/server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** One request with the path exactly as given (fetch would resolve dot segments) and, if any, a body. */
function rawRequest(
  base: string,
  options: http.RequestOptions,
  body?: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe(`HTTP surface (${dbKind})`, () => {
  const server = useInProcessServer();

  it('answers /health and /ready with 200', async () => {
    for (const probe of ['/health', '/ready']) {
      const res = await fetch(`${server.url}${probe}`);
      expect(res.status, probe).toBe(200);
    }
  });

  it('serves GraphiQL to a browser on GET /graphql with its assets inline (no CDN)', async () => {
    const res = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('YogaGraphiQL');
    expect(html).not.toMatch(/<script[^>]+src=["']https?:/);
    expect(html).not.toMatch(/<link[^>]+href=["']https?:/);
  });

  it('allows introspection in development', async () => {
    const res = await gql(server.url, '{ __schema { queryType { name } } }');
    expect(res.body.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });

  it('refuses a browser sign-in from an untrusted origin', async () => {
    const res = await fetch(`${server.url}/api/auth/sign-in/email`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ email: 'a@example.test', password: 'whatever1' }),
    });
    expect(res.status).toBe(403);
  });

  it('answers unknown paths with 404', async () => {
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
  });

  it('answers the errors of its own routes in one envelope, {"error": {"code", "message"}}', async () => {
    const envelope = (code: string) => ({ error: { code, message: expect.any(String) } });
    const cases: [string, http.RequestOptions, string | undefined, number, string][] = [
      ['an unknown path', { path: '/nope' }, undefined, 404, 'NOT_FOUND'],
      ['a method a route does not answer', { path: '/', method: 'POST' }, '', 404, 'NOT_FOUND'],
      [
        'the metadata route, not GET',
        { path: '/.well-known/oauth-authorization-server', method: 'POST' },
        '',
        405,
        'METHOD_NOT_ALLOWED',
      ],
      [
        'an auth body over its limit',
        { path: '/api/auth/sign-in/email', method: 'POST', headers: { 'content-type': 'application/json' } },
        'x'.repeat(17 * 1024),
        413,
        'PAYLOAD_TOO_LARGE',
      ],
      [
        'an auth body of unknown length',
        { path: '/api/auth/sign-in/email', method: 'POST', headers: { 'transfer-encoding': 'chunked' } },
        '{}',
        411,
        'LENGTH_REQUIRED',
      ],
      // Routed by the path as sent: the engine API takes it (and refuses it), GraphQL never sees it.
      [
        'a path into the engine API that resolves elsewhere',
        { path: '/engine/../graphql' },
        undefined,
        401,
        'UNAUTHENTICATED',
      ],
    ];
    for (const [what, options, body, status, code] of cases) {
      const res = await rawRequest(server.url, options, body);
      expect(res.status, what).toBe(status);
      expect(res.headers['content-type'], what).toMatch(/^application\/json/);
      expect(JSON.parse(res.text), what).toEqual(envelope(code));
    }
  });

  it('marks every /graphql answer no-store, errors included: they carry account names, hints and client IPs', async () => {
    const session = await signUp(server.url);
    const json = { 'content-type': 'application/json' };
    const post = (body: string, headers: Record<string, string> = {}) =>
      ({ method: 'POST', headers: { ...json, ...headers }, body }) as RequestInit;
    const answers: [string, string, RequestInit][] = [
      [
        'data',
        '',
        post(JSON.stringify({ query: '{ viewer { email } }' }), { authorization: `Bearer ${session.token}` }),
      ],
      ['401', '', post(JSON.stringify({ query: '{ accounts { id } }' }))],
      ['validation error', '', post(JSON.stringify({ query: '{ nope }' }))],
      ['syntax error', '', post(JSON.stringify({ query: '{' }))],
      ['malformed JSON', '', post('{"query"')],
      ['415', '', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' }],
      ['413', '', post(JSON.stringify({ query: `{ viewer { id } } #${'x'.repeat(200_000)}` }))],
      ['405', '', { method: 'PUT', headers: json, body: '{}' }],
      ['CSRF 403', `?query=${encodeURIComponent('{ viewer { id } }')}`, { headers: { cookie: session.cookie } }],
      ['GET', `?query=${encodeURIComponent('{ viewer { id } }')}`, {}],
      ['GraphiQL', '', { headers: { accept: 'text/html' } }],
    ];
    const seen: Record<string, string | null> = {};
    for (const [what, query, init] of answers) {
      const res = await fetch(`${server.url}/graphql${query}`, init);
      await res.arrayBuffer();
      seen[`${what} (${res.status})`] = res.headers.get('cache-control');
    }
    expect(
      Object.values(seen).every((value) => value === 'no-store'),
      JSON.stringify(seen, null, 1),
    ).toBe(true);
    expect(Object.keys(seen).map((k) => /\((\d+)\)/.exec(k)?.[1])).toEqual(
      expect.arrayContaining(['200', '401', '400', '415', '413', '405', '403']),
    );
  });
});

describe(`configuration (${dbKind})`, () => {
  const run = (env: Record<string, string>) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, ['src/main.ts'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', PORT: '0', ...env },
      });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      child.on('exit', (code) => resolve({ code, output }));
    });

  it('refuses to start in production without ENCRYPTION_KEY, with a clear message', async () => {
    const { code, output } = await run({ NODE_ENV: 'production', BETTER_AUTH_SECRET: testSecrets.BETTER_AUTH_SECRET });
    expect(code).not.toBe(0);
    expect(output).toContain('ENCRYPTION_KEY: required when NODE_ENV=production');
  });

  it('refuses a bad PORT, naming it', async () => {
    const { code, output } = await run({ PORT: 'http' });
    expect(code).not.toBe(0);
    expect(output).toMatch(/PORT: must be a whole number/);
  });

  it.runIf(dbKind === 'postgres')(
    'serves the whole API in production with only DATABASE_URL, PORT, ENCRYPTION_KEY, BETTER_AUTH_SECRET, BETTER_AUTH_URL',
    async () => {
      const db = await createTestDatabase();
      const prod = await startServer({
        db,
        env: { NODE_ENV: 'production', BETTER_AUTH_URL: 'http://localhost:1', DATA_DIR: '' },
      });
      try {
        const session = await signUp(prod.url);
        const res = await gql(prod.url, 'mutation { getOrCreateAccount { created } }', undefined, session);
        expect(res.body.data).toEqual({ getOrCreateAccount: { created: true } });
        const introspection = await gql(prod.url, '{ __schema { queryType { name } } }');
        expect(introspection.body.errors?.length).toBeGreaterThan(0);
      } finally {
        await prod.close();
        await db.drop();
      }
    },
  );
});

describe(`the listen line (${dbKind})`, () => {
  /** The "listening on" line's message and fields, for a start with `env`; the URL it gives answers /health. */
  async function listenLine(db: Awaited<ReturnType<typeof createTestDatabase>>, env: Record<string, string>) {
    const server = await startServer({ db, env });
    try {
      const line = server.logs.find((l) => l.includes('"listening on '));
      const entry = JSON.parse(line ?? '{}') as { msg?: string; address?: string; url?: string; port?: number };
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      const metrics = server.logs.find((l) => l.includes('"metrics on '));
      return { ...entry, serverUrl: server.url, metrics: metrics && (JSON.parse(metrics) as { msg: string }).msg };
    } finally {
      await server.stop();
    }
  }

  it('names the address bound, or all interfaces with the localhost URL to open', async () => {
    const db = await createTestDatabase();
    try {
      const loopback = await listenLine(db, { HOST: '127.0.0.1', METRICS_PORT: String(await freePort()) });
      expect(loopback.msg).toBe(`listening on http://127.0.0.1:${loopback.port}`);
      expect(loopback).toMatchObject({ address: '127.0.0.1', serverUrl: `http://127.0.0.1:${loopback.port}` });
      expect(loopback.metrics).toMatch(/^metrics on http:\/\/127\.0\.0\.1:\d+\/metrics$/);

      const v6 = await listenLine(db, { HOST: '::1' });
      expect(v6.msg).toBe(`listening on http://[::1]:${v6.port}`);

      for (const host of [undefined, '0.0.0.0', '::']) {
        const every = await listenLine(db, host === undefined ? {} : { HOST: host });
        expect(every.msg, `HOST=${host}`).toBe(`listening on http://localhost:${every.port} (all interfaces)`);
        // Unset: `::`, or `0.0.0.0` where the machine has no IPv6.
        expect(host === undefined ? ['::', '0.0.0.0'] : [host]).toContain(every.address);
        expect(every.url).toBe(`http://localhost:${every.port}`);
      }
    } finally {
      await db.drop();
    }
  }, 180_000);
});

describe(`graceful shutdown (${dbKind})`, () => {
  it('on SIGTERM to `npm start`: refuses new connections, finishes the request in flight, then exits 0', async () => {
    const brokers = await startAlpacaStandIns();
    const server = await startServer({ viaNpm: true, env: brokers.env });
    try {
      const session = await signUp(server.url);
      const account = await gql(server.url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
      const apiKey = `PKSIGTERM${randomUUID().replaceAll('-', '').slice(0, 11).toUpperCase()}`;
      const secretKey = `sk-${randomUUID()}`;
      const stored = await gql(
        server.url,
        'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }',
        {
          input: {
            accountId: account.body.data?.getOrCreateAccount.account.id,
            credentialType: 'alpaca',
            apiKey,
            secretKey,
          },
        },
        session,
      );
      // In flight for sure, by a signal rather than a timer: the verification
      // waits at the broker stand-in, which holds it until told to answer.
      brokers.paper.setKey(apiKey, { kind: 'held', secretKey });
      const inFlight = gql(
        server.url,
        'mutation($id: UUID!) { verifyCredential(id: $id) { verification { status } } }',
        { id: stored.body.data?.storeCredential.id },
        session,
      );
      await eventually('the verification to reach the broker', () => brokers.paper.held === 1);

      const exited = server.stop('SIGTERM');
      // The server's own signal that it took the SIGTERM: it stops listening.
      // A new connection is refused while the held request is still open.
      const { port } = new URL(server.url);
      // ECONNRESET is an attempt that raced the close: accepted by the kernel
      // into the listen backlog just before the listener went away.
      const refusal = await eventually('new connections to be refused', async () => {
        const outcome = await connectOutcome(Number(port));
        return outcome === 'connected' || outcome === 'ECONNRESET' ? undefined : outcome;
      });
      expect(refusal).toBe('ECONNREFUSED');
      expect(server.child.exitCode).toBeNull();

      brokers.paper.proceed();
      const answered = await inFlight;
      expect(answered.status).toBe(200);
      expect(answered.body).toEqual({ data: { verifyCredential: { verification: { status: 'VERIFIED' } } } });
      expect(await exited).toBe(0);
    } finally {
      await server.close();
      await brokers.close();
    }
    // A start through npm and a sign-up: near a minute on PGlite with a core kept busy.
  }, 180_000);
});

/** Opens a fresh TCP connection to the port on localhost: 'connected', or the error code. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: 'localhost', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}
