import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.ts';
import { loadConfig } from '../src/config/load.ts';
import { forListeningPort } from '../src/config/origins.ts';
import { defaultKeyId } from '../src/crypto/keyring.ts';

let dataDir: string;
const warnings: string[] = [];
const warn = (m: string) => warnings.push(m);
const key = () => randomBytes(32).toString('base64');
const prodEnv = () => ({
  NODE_ENV: 'production',
  DATABASE_URL: 'postgresql://u@db/x',
  ENCRYPTION_KEY: key(),
  BETTER_AUTH_SECRET: 'x'.repeat(40),
  DATA_DIR: dataDir,
});

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'bca-config-'));
  warnings.length = 0;
});
afterEach(() => rm(dataDir, { recursive: true, force: true }));

describe('loadConfig', () => {
  it('defaults to the embedded database in DATA_DIR on port 4000 with GraphiQL on', async () => {
    const config = await loadConfig({ DATA_DIR: dataDir }, warn);
    expect(config.port).toBe(4000);
    expect(config.database).toEqual({
      kind: 'pglite',
      dataDir: path.join(dataDir, 'pgdata'),
      requestRole: 'app_user',
      statementTimeoutMs: 5000,
      maxCredentialsPerAccount: 100,
    });
    expect(config.graphiql).toBe(true);
    expect(config.auth.baseURL).toBe('http://localhost:4000');
    expect(config.auth.trustedOrigins).toEqual(['http://localhost:4000', 'http://127.0.0.1:4000', 'http://[::1]:4000']);
  });

  it('follows the port actually bound when BETTER_AUTH_URL is not set (PORT=0)', async () => {
    const config = await loadConfig({ DATA_DIR: dataDir, PORT: '0', TRUSTED_ORIGINS: 'https://app.example' }, warn);
    const bound = forListeningPort(config, 41234);
    expect(bound.auth.baseURL).toBe('http://localhost:41234');
    expect(bound.auth.trustedOrigins).toEqual([
      'http://localhost:41234',
      'http://127.0.0.1:41234',
      'http://[::1]:41234',
      'https://app.example',
    ]);
    const configured = await loadConfig({ ...prodEnv(), PORT: '0', BETTER_AUTH_URL: 'https://api.example' }, warn);
    expect(forListeningPort(configured, 41234).auth.baseURL).toBe('https://api.example');
  });

  it('names every bad value in one error', async () => {
    const error = await loadConfig(
      { PORT: 'eighty', DATABASE_URL: 'mysql://x', GRAPHIQL: 'yes', DATA_DIR: dataDir },
      warn,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/PORT: must be a whole number/);
    expect((error as Error).message).toMatch(/DATABASE_URL: must be a postgresql:\/\/ URL/);
    expect((error as Error).message).toMatch(/GRAPHIQL: must be true or false/);
  });

  it('rejects an ENCRYPTION_KEY that is not 32 bytes of base64', async () => {
    for (const bad of [randomBytes(16).toString('base64'), 'not base64!!', `${key()}x`]) {
      await expect(loadConfig({ ENCRYPTION_KEY: bad, DATA_DIR: dataDir }, warn)).rejects.toThrow(
        /ENCRYPTION_KEY: must be the base64 encoding of exactly 32 bytes/,
      );
    }
  });

  it('requires both secrets in production and generates nothing', async () => {
    await expect(loadConfig({ ...prodEnv(), ENCRYPTION_KEY: '', BETTER_AUTH_SECRET: undefined }, warn)).rejects.toThrow(
      /^Invalid configuration: ENCRYPTION_KEY: required when NODE_ENV=production\nInvalid configuration: BETTER_AUTH_SECRET: required/,
    );
    await expect(stat(path.join(dataDir, 'dev-secrets.json'))).rejects.toThrow();
  });

  it('serves a production start with only the five documented variables', async () => {
    const env = { ...prodEnv(), PORT: '8080', BETTER_AUTH_URL: 'https://api.example.com' };
    const config = await loadConfig(env, warn);
    expect(config.graphiql).toBe(false);
    expect(config.auth.trustedOrigins).toEqual(['https://api.example.com']);
    expect(warnings).toEqual([]);
  });

  it('generates development secrets once, with a warning, and reuses them', async () => {
    const first = await loadConfig({ DATA_DIR: dataDir }, warn);
    expect(warnings.join()).toMatch(/ENCRYPTION_KEY and BETTER_AUTH_SECRET not set/);
    const second = await loadConfig({ DATA_DIR: dataDir }, warn);
    expect(second.encryption.current).toEqual(first.encryption.current);
    expect(second.auth.secret).toBe(first.auth.secret);
    const file = path.join(dataDir, 'dev-secrets.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toHaveProperty('encryptionKey');
  });

  it('gives concurrent first starts on a fresh DATA_DIR the same development secrets', async () => {
    const fresh = path.join(dataDir, 'fresh');
    const configs = await Promise.all(Array.from({ length: 8 }, () => loadConfig({ DATA_DIR: fresh }, warn)));
    const stored = JSON.parse(await readFile(path.join(fresh, 'dev-secrets.json'), 'utf8'));
    for (const config of configs) {
      expect(config.auth.secret).toBe(stored.authSecret);
      expect(config.encryption.current.key.toString('base64')).toBe(stored.encryptionKey);
    }
    expect((await stat(fresh)).mode & 0o777).toBe(0o700);
  });

  it('takes DATABASE_LISTEN_URL with DATABASE_URL only, as a postgresql:// URL', async () => {
    const config = await loadConfig({ ...prodEnv(), DATABASE_LISTEN_URL: 'postgresql://u@db-direct/x' }, warn);
    expect(config.database).toMatchObject({ kind: 'postgres', listenUrl: 'postgresql://u@db-direct/x' });
    expect((await loadConfig(prodEnv(), warn)).database).not.toHaveProperty('listenUrl');
    await expect(loadConfig({ ...prodEnv(), DATABASE_LISTEN_URL: 'http://db' }, warn)).rejects.toThrow(
      /^Invalid configuration: DATABASE_LISTEN_URL: must be a postgresql:\/\/ URL$/,
    );
    await expect(
      loadConfig({ DATA_DIR: dataDir, DATABASE_LISTEN_URL: 'postgresql://u@db-direct/x' }, warn),
    ).rejects.toThrow(/^Invalid configuration: DATABASE_LISTEN_URL: needs DATABASE_URL as well/);
  });

  it('reads older keys from ENCRYPTION_KEYS, with or without ids', async () => {
    const [current, old1, old2] = [key(), key(), key()];
    const config = await loadConfig(
      { ...prodEnv(), ENCRYPTION_KEY: current, ENCRYPTION_KEYS: `${old1}, legacy:${old2}` },
      warn,
    );
    expect(config.encryption.current.id).toBe(defaultKeyId(Buffer.from(current, 'base64')));
    expect(config.encryption.previous.map((k) => k.id)).toEqual([defaultKeyId(Buffer.from(old1, 'base64')), 'legacy']);
    await expect(loadConfig({ ...prodEnv(), ENCRYPTION_KEYS: 'legacy:short' }, warn)).rejects.toThrow(
      /ENCRYPTION_KEYS: entry 1/,
    );
  });

  it('refuses an ENCRYPTION_KEYS entry that gives the current key id another key, and accepts the same key again', async () => {
    const [current, other] = [key(), key()];
    const currentId = defaultKeyId(Buffer.from(current, 'base64'));
    const clashes = [
      { ENCRYPTION_KEY: current, ENCRYPTION_KEYS: `${currentId}:${other}` },
      { ENCRYPTION_KEY: current, ENCRYPTION_KEY_ID: 'main', ENCRYPTION_KEYS: `main:${other}` },
      { ENCRYPTION_KEY: current, ENCRYPTION_KEYS: `old:${other}, old:${key()}` },
    ];
    for (const env of clashes) {
      const error = await loadConfig({ ...prodEnv(), ...env }, warn).catch((e: unknown) => e);
      expect(error, JSON.stringify(env)).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(
        /ENCRYPTION_KEYS: entry \d+ has the id "[^"]+" of (ENCRYPTION_KEY|entry \d+)/,
      );
      expect((error as Error).message).not.toContain(other);
    }
    const same = await loadConfig(
      { ...prodEnv(), ENCRYPTION_KEY: current, ENCRYPTION_KEYS: `${current}, old:${other}` },
      warn,
    );
    expect(same.encryption.current.id).toBe(currentId);
    expect(same.encryption.previous.map((k) => k.id)).toEqual(['old']);
  });

  it('stops the server at start when ENCRYPTION_KEYS reuses the current key id (exit 78)', async () => {
    const result = await promisify(execFile)(process.execPath, ['src/main.ts'], {
      cwd: path.resolve(import.meta.dirname, '..'),
      env: {
        PATH: process.env.PATH,
        DATA_DIR: dataDir,
        PORT: '0',
        ENCRYPTION_KEY: key(),
        ENCRYPTION_KEY_ID: 'main',
        ENCRYPTION_KEYS: `main:${key()}`,
      },
      // A server that starts would serve until stopped.
      timeout: 30_000,
    }).catch((e: { code: number; stderr: string }) => e);
    expect(result).toMatchObject({ code: 78 });
    expect((result as { stderr: string }).stderr).toMatch(
      /ENCRYPTION_KEYS: entry 1 has the id "main" of ENCRYPTION_KEY/,
    );
  });

  it('points verification, engines and market data at Alpaca by default, with a 5 s timeout', async () => {
    const config = await loadConfig({ DATA_DIR: dataDir }, warn);
    expect(config.broker).toEqual({
      alpaca: {
        paperUrl: 'https://paper-api.alpaca.markets',
        liveUrl: 'https://api.alpaca.markets',
        dataUrl: 'https://data.alpaca.markets',
      },
      timeoutMs: 5000,
    });
  });

  it('takes https broker URLs anywhere, and plain http only on a loopback address', async () => {
    const accepted = [
      ['https://alpaca-proxy.internal.example', 'https://alpaca-proxy.internal.example'],
      ['https://paper-api.alpaca.markets/', 'https://paper-api.alpaca.markets'],
      ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
      ['http://127.10.0.3:9', 'http://127.10.0.3:9'],
      ['http://[::1]:4010', 'http://[::1]:4010'],
      ['http://localhost:4010', 'http://localhost:4010'],
    ];
    for (const [given, origin] of accepted) {
      const config = await loadConfig(
        {
          DATA_DIR: dataDir,
          ALPACA_PAPER_URL: given,
          ALPACA_LIVE_URL: given,
          ALPACA_DATA_URL: given,
          BROKER_TIMEOUT_MS: '250',
        },
        warn,
      );
      expect(config.broker).toEqual({
        alpaca: { paperUrl: origin, liveUrl: origin, dataUrl: origin },
        timeoutMs: 250,
      });
    }
  });

  it('refuses any other broker URL or timeout, naming the variable', async () => {
    const refused: [Record<string, string>, RegExp][] = [
      [{ ALPACA_PAPER_URL: 'http://paper-api.alpaca.markets' }, /ALPACA_PAPER_URL: must be an https:\/\/ URL/],
      [{ ALPACA_LIVE_URL: 'http://10.0.0.5:8080' }, /ALPACA_LIVE_URL: must be an https:\/\/ URL/],
      [{ ALPACA_LIVE_URL: 'http://localhost.example.com' }, /ALPACA_LIVE_URL: must be an https:\/\/ URL/],
      [{ ALPACA_LIVE_URL: 'http://128.0.0.1' }, /ALPACA_LIVE_URL: must be an https:\/\/ URL/],
      [{ ALPACA_PAPER_URL: 'ftp://127.0.0.1' }, /ALPACA_PAPER_URL: must be an https:\/\/ URL/],
      [{ ALPACA_PAPER_URL: 'paper-api.alpaca.markets' }, /ALPACA_PAPER_URL: must be a URL/],
      [{ ALPACA_PAPER_URL: 'https://u:p@paper-api.alpaca.markets' }, /ALPACA_PAPER_URL: must be a base URL/],
      [{ ALPACA_LIVE_URL: 'https://api.alpaca.markets/v2' }, /ALPACA_LIVE_URL: must be a base URL/],
      [{ ALPACA_DATA_URL: 'http://data.alpaca.markets' }, /ALPACA_DATA_URL: must be an https:\/\/ URL/],
      [{ ALPACA_DATA_URL: 'https://data.alpaca.markets/v2' }, /ALPACA_DATA_URL: must be a base URL/],
      [{ BROKER_TIMEOUT_MS: '0' }, /BROKER_TIMEOUT_MS: must be at least 1/],
      [{ BROKER_TIMEOUT_MS: '5s' }, /BROKER_TIMEOUT_MS: must be a whole number/],
    ];
    for (const [env, message] of refused) {
      const error = await loadConfig({ DATA_DIR: dataDir, ...env }, warn).catch((e: unknown) => e);
      expect(error, JSON.stringify(env)).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('stops the server at start on a plain-http broker URL, naming the variable (exit 78)', async () => {
    const result = await promisify(execFile)(process.execPath, ['src/main.ts'], {
      cwd: path.resolve(import.meta.dirname, '..'),
      env: { PATH: process.env.PATH, DATA_DIR: dataDir, PORT: '0', ALPACA_LIVE_URL: 'http://api.alpaca.markets' },
    }).catch((e: { code: number; stderr: string }) => e);
    expect(result).toMatchObject({ code: 78 });
    expect((result as { stderr: string }).stderr).toMatch(/ALPACA_LIVE_URL: must be an https:\/\/ URL/);
  });
});
