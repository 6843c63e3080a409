// CORS: a trusted origin gets exactly itself back with
// credentials, on every route; any other origin gets no
// Access-Control-Allow-Origin at all (never `null`, never an echo, never the
// one configured origin), whether one origin is trusted or several.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { type InProcessServer, useInProcessServer } from '../support/in-process.ts';

const APP = 'https://app.example';
const OTHER_APP = 'http://localhost:5173';
const UNKNOWN = [
  'https://evil.example',
  'null',
  'https://app.example.evil.example',
  'http://app.example',
  'https://APP.example',
];

/** One request of each kind every route takes: simple ones and a preflight. */
function requests(origin: string): [string, string, RequestInit][] {
  const json = { 'content-type': 'application/json', origin };
  const preflight = {
    origin,
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'content-type',
  };
  return [
    ['POST /graphql', '/graphql', { method: 'POST', headers: json, body: JSON.stringify({ query: '{ __typename }' }) }],
    ['GET /graphql', `/graphql?query=${encodeURIComponent('{ __typename }')}`, { headers: { origin } }],
    ['preflight /graphql', '/graphql', { method: 'OPTIONS', headers: preflight }],
    [
      'POST /api/auth/sign-in/email',
      '/api/auth/sign-in/email',
      {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ email: 'nobody@example.test', password: 'wrong-password' }),
      },
    ],
    ['preflight /api/auth/sign-in/email', '/api/auth/sign-in/email', { method: 'OPTIONS', headers: preflight }],
    ['GET /api/auth/get-session', '/api/auth/get-session', { headers: { origin } }],
    ['GET /health', '/health', { headers: { origin } }],
    ['GET /ready', '/ready', { headers: { origin } }],
    ['GET /login', '/login', { headers: { origin } }],
    ['GET /nowhere', '/nowhere', { headers: { origin } }],
  ];
}

async function corsHeaders(server: InProcessServer, origin: string) {
  const seen: Record<string, { allowOrigin: string | null; credentials: string | null; varyOrigin: boolean }> = {};
  for (const [name, url, init] of requests(origin)) {
    const res = await fetch(`${server.url}${url}`, init);
    await res.arrayBuffer();
    seen[name] = {
      allowOrigin: res.headers.get('access-control-allow-origin'),
      credentials: res.headers.get('access-control-allow-credentials'),
      varyOrigin: /\bOrigin\b/i.test(res.headers.get('vary') ?? ''),
    };
  }
  return seen;
}

function expectNoCors(seen: Awaited<ReturnType<typeof corsHeaders>>, origin: string) {
  for (const [name, headers] of Object.entries(seen)) {
    expect({ name, origin, ...headers }).toEqual({
      name,
      origin,
      allowOrigin: null,
      credentials: null,
      varyOrigin: true,
    });
  }
}

describe(`CORS with several trusted origins (${dbKind})`, () => {
  const server = useInProcessServer({ env: { TRUSTED_ORIGINS: `${APP}, ${OTHER_APP}` } });

  it('answers each trusted origin with exactly itself and credentials, on every route', async () => {
    for (const origin of [APP, OTHER_APP, server.url]) {
      for (const [name, headers] of Object.entries(await corsHeaders(server, origin))) {
        expect({ name, ...headers }).toEqual({ name, allowOrigin: origin, credentials: 'true', varyOrigin: true });
      }
    }
  });

  it('gives any other origin no CORS header at all (no null, no echo)', async () => {
    for (const origin of UNKNOWN) expectNoCors(await corsHeaders(server, origin), origin);
  });

  it('lets a trusted origin preflight what our clients send', async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: APP,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/content-type.*authorization.*x-graphql-yoga-csrf/);
  });

  it('serves a trusted origin signed in by cookie end to end, and answers an unknown one without reading rights', async () => {
    const session = await signUp(server.url);
    const query = JSON.stringify({ query: '{ viewer { email } }' });
    const call = (origin: string) =>
      fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: session.cookie, origin },
        body: query,
      });
    const trusted = await call(APP);
    expect(trusted.headers.get('access-control-allow-origin')).toBe(APP);
    expect(await trusted.json()).toEqual({ data: { viewer: { email: session.email } } });
    const unknown = await call('https://evil.example');
    expect(unknown.headers.get('access-control-allow-origin')).toBeNull();
    await unknown.arrayBuffer();
  });
});

describe(`CORS with one trusted origin (${dbKind})`, () => {
  const server = useInProcessServer({ env: { BETTER_AUTH_URL: 'https://api.example' } });

  it('does not hand the one trusted origin to anyone else', async () => {
    for (const origin of [...UNKNOWN, server.url]) expectNoCors(await corsHeaders(server, origin), origin);
    const own = await corsHeaders(server, 'https://api.example');
    expect(own['POST /graphql']).toMatchObject({ allowOrigin: 'https://api.example', credentials: 'true' });
  });
});

describe('TRUSTED_ORIGINS', () => {
  const refused = [
    '*',
    'https://*.example.com',
    'https://app.example/',
    'https://app.example/path',
    'https://app.example?x=1',
    'https://user@app.example',
    'app.example',
    'null',
    'ftp://app.example',
    'chrome-extension://abc',
  ];

  it('keeps only origins, as browsers write them', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bca-cors-'));
    try {
      const config = await loadConfig(
        {
          DATA_DIR: dataDir,
          BETTER_AUTH_URL: 'https://api.example',
          TRUSTED_ORIGINS: 'https://App.Example:443, http://[::1]:8080',
        },
        () => {},
      );
      expect(config.auth.trustedOrigins).toEqual(['https://api.example', 'https://app.example', 'http://[::1]:8080']);
      for (const entry of refused) {
        await expect(
          loadConfig({ DATA_DIR: dataDir, TRUSTED_ORIGINS: `https://ok.example,${entry}` }, () => {}),
          entry,
        ).rejects.toThrow(/TRUSTED_ORIGINS: ".*" is not an origin/);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('stops the server at start on a wildcard, naming the variable (exit 78)', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bca-cors-'));
    const result = await promisify(execFile)(process.execPath, ['src/main.ts'], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      env: { PATH: process.env.PATH, DATA_DIR: dataDir, PORT: '0', TRUSTED_ORIGINS: '*' },
    }).catch((e: { code: number; stderr: string }) => e);
    await rm(dataDir, { recursive: true, force: true });
    expect(result).toMatchObject({ code: 78 });
    expect((result as { stderr: string }).stderr).toMatch(/TRUSTED_ORIGINS: "\*" is not an origin/);
  });
});
