// The pure rules of trading-engine access: which Alpaca requests match which
// template (and nothing else, whatever the path's tricks), scopes, grant
// terms, the token endpoint's Basic parsing, the bearer header, body rules.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.ts';
import { loadConfig } from '../../src/config/load.ts';
import { cleanGrantTerms, isGrantActive, scopesAllow } from '../../src/domain/engine-grants.ts';
import { matchAlpacaRoute, plainSegments } from '../../src/domain/engine-routes.ts';
import { InvalidInputError } from '../../src/domain/errors.ts';
import { bearerToken, judgeBody } from '../../src/engine/api.ts';
import { authorizationServerMetadata, basicCredentials } from '../../src/engine/token-endpoint.ts';

const ORDER_ID = '61e69015-8549-4bfd-b9c3-01e75843f47d';

function route(method: string, path: string) {
  const segments = plainSegments(`/${path}`);
  return segments ? matchAlpacaRoute(method, segments) : null;
}

describe('Alpaca routes', () => {
  it('matches the documented templates exactly, with their scope and the audit text', () => {
    const allowed: [string, string, string, 'READ' | 'TRADE'][] = [
      ['GET', 'v2/account', 'GET /v2/account', 'READ'],
      ['GET', 'v2/account/activities', 'GET /v2/account/activities', 'READ'],
      ['GET', 'v2/positions', 'GET /v2/positions', 'READ'],
      ['GET', 'v2/positions/AAPL', 'GET /v2/positions/{symbol}', 'READ'],
      ['GET', 'v2/orders', 'GET /v2/orders', 'READ'],
      ['GET', `v2/orders/${ORDER_ID}`, 'GET /v2/orders/{id}', 'READ'],
      ['GET', 'v2/orders:by_client_order_id', 'GET /v2/orders:by_client_order_id', 'READ'],
      ['GET', 'v2/assets', 'GET /v2/assets', 'READ'],
      ['GET', 'v2/assets/BRK.B', 'GET /v2/assets/{symbol}', 'READ'],
      ['GET', `v2/assets/${ORDER_ID}`, 'GET /v2/assets/{symbol}', 'READ'],
      ['GET', 'v2/clock', 'GET /v2/clock', 'READ'],
      ['GET', 'v2/calendar', 'GET /v2/calendar', 'READ'],
      ['POST', 'v2/orders', 'POST /v2/orders', 'TRADE'],
      ['PATCH', `v2/orders/${ORDER_ID}`, 'PATCH /v2/orders/{id}', 'TRADE'],
      ['DELETE', `v2/orders/${ORDER_ID}`, 'DELETE /v2/orders/{id}', 'TRADE'],
      ['DELETE', 'v2/orders', 'DELETE /v2/orders', 'TRADE'],
      ['DELETE', 'v2/positions', 'DELETE /v2/positions', 'TRADE'],
      ['DELETE', 'v2/positions/AAPL', 'DELETE /v2/positions/{symbol}', 'TRADE'],
    ];
    for (const [method, path, request, scope] of allowed) {
      expect(route(method, path), `${method} ${path}`).toEqual({
        method,
        template: request.slice(request.indexOf('/') + 1),
        path,
        scope,
        request,
      });
    }
  });

  it('matches nothing else: other methods, paths, prefixes, cases and parameters', () => {
    const refused: [string, string][] = [
      ['GET', 'v2/account/'],
      ['GET', 'v2/account/configurations'],
      ['PATCH', 'v2/account/configurations'],
      ['GET', 'v2/account/activities/FILL'],
      ['GET', 'v2/accounts'],
      ['GET', 'v2'],
      ['GET', ''],
      ['GET', 'V2/account'],
      ['GET', 'v2/ACCOUNT'],
      ['GET', 'v1/account'],
      ['GET', 'v2/orders/not-a-uuid'],
      ['GET', `v2/orders/${ORDER_ID}x`],
      ['GET', `v2/orders/${ORDER_ID}/legs`],
      ['GET', 'v2/positions/-AAPL'],
      ['GET', 'v2/watchlists'],
      ['GET', 'v2/orders:by_client_order_id/x'],
      ['PUT', 'v2/orders'],
      ['POST', 'v2/account'],
      ['POST', `v2/orders/${ORDER_ID}`],
      ['PATCH', 'v2/orders'],
      ['HEAD', 'v2/account'],
      ['get', 'v2/account'],
      ['POST', 'v2/positions'],
      ['DELETE', 'v2/account'],
    ];
    for (const [method, path] of refused) expect(route(method, path), `${method} ${path}`).toBeNull();
  });

  it('never reads a path with dot segments, empty segments, percent-encoding or backslashes', () => {
    for (const path of [
      '/v2/../v2/account',
      '/v2/./account',
      '/v2/account/..',
      '/v2//account',
      '//v2/account',
      '/v2/account/',
      '/v2%2Faccount',
      '/v2%2faccount',
      '/v2/%61ccount',
      '/v2%5Caccount',
      '/v2\\account',
      '/v2/account?x',
      '/v2/account#x',
      '/v2/accoünt',
      '/v2/account ',
      'v2/account',
    ]) {
      expect(plainSegments(path), path).toBeNull();
    }
    expect(plainSegments('/v2/assets/BRK.B')).toEqual(['v2', 'assets', 'BRK.B']);
  });

  it('refuses any path holding a dot segment or an encoded slash, wherever it is (property)', () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._:-]{1,12}$/);
    const trick = fc.constantFrom('..', '.', '', '%2F', '%2f', '%5C', '%2e%2e', 'a%2Fb');
    fc.assert(
      fc.property(
        fc.array(segment, { maxLength: 5 }),
        trick,
        fc.nat(5),
        fc.constantFrom('GET', 'POST', 'DELETE', 'PATCH'),
        (segments, bad, at, method) => {
          const parts = [...segments];
          parts.splice(Math.min(at, parts.length), 0, bad);
          const path = `/${parts.join('/')}`;
          const plain = plainSegments(path);
          expect(plain === null || !plain.some((s) => s === '..' || s === '.' || s.includes('%'))).toBe(true);
          if (plain) expect(matchAlpacaRoute(method, plain)?.path).not.toMatch(/%|\.\.|\/\//);
        },
      ),
    );
  });
});

describe('scopes and grants', () => {
  it('TRADE includes READ; READ alone allows no write', () => {
    expect(scopesAllow(['READ'], 'READ')).toBe(true);
    expect(scopesAllow(['READ'], 'TRADE')).toBe(false);
    expect(scopesAllow(['TRADE'], 'READ')).toBe(true);
    expect(scopesAllow(['TRADE'], 'TRADE')).toBe(true);
    expect(scopesAllow([], 'READ')).toBe(false);
  });

  it('is active until revoked or past its expiry', () => {
    const now = new Date('2026-12-01T12:00:00Z');
    expect(isGrantActive({ revokedAt: null, expiresAt: null }, now)).toBe(true);
    expect(isGrantActive({ revokedAt: null, expiresAt: new Date('2026-12-01T12:00:01Z') }, now)).toBe(true);
    expect(isGrantActive({ revokedAt: null, expiresAt: now }, now)).toBe(false);
    expect(isGrantActive({ revokedAt: now, expiresAt: null }, now)).toBe(false);
  });

  it('cleans grant terms: scopes once each, a future expiry; else BAD_USER_INPUT naming the field', () => {
    const now = new Date('2026-12-01T12:00:00Z');
    expect(cleanGrantTerms({ scopes: ['TRADE', 'READ', 'TRADE'] }, now)).toEqual({
      scopes: ['READ', 'TRADE'],
      expiresAt: null,
    });
    const later = new Date('2026-12-02T00:00:00Z');
    expect(cleanGrantTerms({ scopes: ['READ'], expiresAt: later }, now)).toEqual({
      scopes: ['READ'],
      expiresAt: later,
    });
    const fieldOf = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return error instanceof InvalidInputError ? error.field : 'other';
      }
      return 'none';
    };
    expect(fieldOf(() => cleanGrantTerms({ scopes: [] }, now))).toBe('scopes');
    expect(fieldOf(() => cleanGrantTerms({ scopes: ['ADMIN'] }, now))).toBe('scopes');
    expect(fieldOf(() => cleanGrantTerms({ scopes: ['READ'], expiresAt: now }, now))).toBe('expiresAt');
    expect(fieldOf(() => cleanGrantTerms({ scopes: ['READ'], expiresAt: new Date('2020-01-01') }, now))).toBe(
      'expiresAt',
    );
  });
});

describe('the token endpoint and the bearer header', () => {
  const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;

  it('reads client_secret_basic: form-encoded id and secret, split at the first colon', () => {
    expect(basicCredentials(basic('ec_abc:ecs_s3cret'))).toEqual({ id: 'ec_abc', secret: 'ecs_s3cret' });
    expect(basicCredentials(basic('ec%3Aabc:a%2Bb+c:d'))).toEqual({ id: 'ec:abc', secret: 'a+b c:d' });
    expect(basicCredentials(undefined)).toBeNull();
    expect(basicCredentials('Bearer x')).toBeNull();
    expect(basicCredentials(basic('no-colon'))).toBe('malformed');
    expect(basicCredentials(basic(':secret'))).toBe('malformed');
    expect(basicCredentials(basic('id:%E0%A4%A'))).toBe('malformed');
    expect(basicCredentials('Basic !!!')).toBe('malformed');
  });

  it('reads Authorization: Bearer <token> only', () => {
    expect(bearerToken('Bearer eat_abc-_.~+/=')).toBe('eat_abc-_.~+/=');
    expect(bearerToken('bearer eat_abc')).toBe('eat_abc');
    expect(bearerToken('Bearer')).toBeNull();
    expect(bearerToken('Bearer a b')).toBeNull();
    expect(bearerToken('Basic eat_abc')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });

  it('publishes RFC 8414 metadata naming the token endpoint under the public base URL', () => {
    expect(authorizationServerMetadata('https://api.example.com/')).toEqual({
      issuer: 'https://api.example.com',
      token_endpoint: 'https://api.example.com/engine/v1/oauth/token',
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      response_types_supported: [],
    });
  });
});

describe('bodies', () => {
  const bytes = (text: string) => ({ kind: 'read' as const, bytes: Buffer.from(text) });
  it('takes JSON for POST and PATCH, nothing for GET and DELETE, and nothing too large', () => {
    expect(judgeBody('POST', bytes('{"symbol":"AAPL"}'))).toBeNull();
    expect(judgeBody('PATCH', bytes('{}'))).toBeNull();
    expect(judgeBody('GET', { kind: 'none' })).toBeNull();
    expect(judgeBody('DELETE', { kind: 'none' })).toBeNull();
    expect(judgeBody('POST', { kind: 'none' })?.code).toBe('BAD_REQUEST');
    expect(judgeBody('POST', bytes('{'))?.code).toBe('BAD_REQUEST');
    expect(judgeBody('POST', { kind: 'read', bytes: Buffer.from([0x22, 0xff, 0x22]) })?.code).toBe('BAD_REQUEST');
    expect(judgeBody('GET', bytes('{}'))?.code).toBe('BAD_REQUEST');
    expect(judgeBody('POST', { kind: 'too-large' })?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(judgeBody('GET', { kind: 'too-large' })?.status).toBe(413);
  });
});

describe('configuration', () => {
  const base = { ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'), BETTER_AUTH_SECRET: 'x'.repeat(32) };
  it('reads ENGINE_TOKEN_TTL_SECONDS (600, 1..3600), ENGINE_RATE_LIMIT (180), ENGINE_TOKENS_PER_CLIENT (20) and ALPACA_DATA_URL', async () => {
    const config = await loadConfig(base);
    expect(config.engine).toEqual({ tokenTtlSeconds: 600, rateLimitPerMinute: 180, tokensPerClient: 20 });
    expect(config.broker.alpaca.dataUrl).toBe('https://data.alpaca.markets');
    const set = await loadConfig({
      ...base,
      ENGINE_TOKEN_TTL_SECONDS: '3600',
      ENGINE_RATE_LIMIT: '5',
      ENGINE_TOKENS_PER_CLIENT: '3',
      ALPACA_DATA_URL: 'http://127.0.0.1:9999',
    });
    expect(set.engine).toEqual({ tokenTtlSeconds: 3600, rateLimitPerMinute: 5, tokensPerClient: 3 });
    expect(set.broker.alpaca.dataUrl).toBe('http://127.0.0.1:9999');
    for (const [name, value] of [
      ['ENGINE_TOKEN_TTL_SECONDS', '3601'],
      ['ENGINE_TOKEN_TTL_SECONDS', '0'],
      ['ENGINE_RATE_LIMIT', '0'],
      ['ENGINE_RATE_LIMIT', 'lots'],
      ['ENGINE_TOKENS_PER_CLIENT', '0'],
      ['ALPACA_DATA_URL', 'http://data.example'],
    ]) {
      const loading = loadConfig({ ...base, [name as string]: value });
      await expect(loading, `${name}=${value}`).rejects.toThrow(ConfigError);
      await expect(loading).rejects.toThrow(name as string);
    }
  });
});
