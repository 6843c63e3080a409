// All configuration, read from the environment and validated once at start:
// the environment's schema, loadConfig and the Config it returns. Every other
// module receives the typed Config; nothing else reads process.env. The
// variables are described in docs/configuration.md.
import path from 'node:path';
import proxyAddr from 'proxy-addr';
import { z } from 'zod';
import { defaultKeyId, type EncryptionKey, KEY_ID, parseKeyList } from '../crypto/keyring.ts';
import { PGDATA_DIR } from '../db/data-dir-lock.ts';
import type { DatabaseOptions } from '../db/database.ts';
import type { RequestTransactionSettings } from '../db/request-transaction.ts';
import { brokerUrl } from './broker-urls.ts';
import { type GeneratedSecrets, missingSecrets, type SecretsSource } from './dev-secrets.ts';
import { base64Key, olderKeys } from './encryption-keys.ts';
import { invalid } from './errors.ts';
import { localOrigins, parseOrigin } from './origins.ts';

/** The role request transactions run as: created, granted and named in every policy by the migrations. */
export const REQUEST_ROLE = 'app_user';

const boolean = z
  .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1');

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const list = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function isValidTrust(values: string[]): boolean {
  try {
    proxyAddr.compile(values);
    return true;
  } catch {
    return false;
  }
}

const otlpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL (OTLP over HTTP)' });
const otlpProtocol = z.enum(['http/protobuf', 'http/json'], {
  error: 'must be http/protobuf or http/json (traces go out over OTLP/HTTP)',
});

const blankAsUnset = (v: unknown) => (v === '' ? undefined : v);

/** What request transactions are scoped with when the environment does not say (src/db/request-transaction.ts). */
export const REQUEST_TRANSACTION_DEFAULTS: RequestTransactionSettings = {
  statementTimeoutMs: 5000,
  maxCredentialsPerAccount: 100,
};

/**
 * The default complexity limit (src/graphql/complexity.ts): the largest
 * legitimate query (every account field, every credential at the cap of 100,
 * each with a full page of 100 events and its 25 engine grants) passes with
 * room to spare; the same twice over (aliases), or a back-link loop three
 * lists deep, is refused (test/unit/complexity.test.ts prints the figures).
 */
export const QUERY_COMPLEXITY_DEFAULT = 300_000;

const originList = z.string().transform((value, ctx) => {
  const origins: string[] = [];
  for (const entry of list(value)) {
    const origin = parseOrigin(entry);
    if (origin) origins.push(origin);
    else
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" is not an origin: write scheme://host[:port] (http or https), without path, "/" or wildcard`,
      });
  }
  return origins;
});

/** The message never quotes the value: it may hold a password. */
const postgresUrl = z.string().superRefine((value, ctx) => {
  if (!/^postgres(ql)?:\/\//.test(value)) ctx.addIssue({ code: 'custom', message: 'must be a postgresql:// URL' });
  else if (!URL.canParse(value)) {
    ctx.addIssue({
      code: 'custom',
      message: 'is not a valid URL: check the host and port, and %-encode reserved characters in the user and password',
    });
  }
});

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().optional(),
  PORT: int(0, 65535).default(4000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: postgresUrl.optional(),
  DATABASE_REQUEST_URL: postgresUrl.optional(),
  DATABASE_LISTEN_URL: postgresUrl.optional(),
  DATA_DIR: z.string().default('./.data'),
  DATABASE_POOL_SIZE: int(1, 1000).default(10),
  DATABASE_PREPARED_STATEMENTS: boolean.default(false),
  // The migrations create app_user, write every policy TO it and grant it: no
  // other name can work, so the variable only accepts that one (old configurations).
  DATABASE_REQUEST_ROLE: z
    .literal(REQUEST_ROLE, {
      error: `was removed: the migrations create, grant and write every policy for ${REQUEST_ROLE}, so no other role can work; remove it (docs/configuration.md)`,
    })
    .optional(),
  MIGRATE_ON_START: boolean.default(true),
  ENCRYPTION_KEY: base64Key.optional(),
  ENCRYPTION_KEY_ID: z.string().regex(KEY_ID, 'must be 1-64 letters, digits, dots, dashes or underscores').optional(),
  ENCRYPTION_KEYS: z.string().optional(),
  BETTER_AUTH_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  BETTER_AUTH_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  TRUSTED_ORIGINS: originList.optional(),
  TRUST_PROXY: z
    .string()
    .refine(
      (v) => isValidTrust(list(v)),
      'must be a comma-separated list of IP addresses, CIDR ranges, loopback, linklocal or uniquelocal',
    )
    .optional(),
  GRAPHIQL: boolean.optional(),
  MAX_QUERY_DEPTH: int(1, 100).default(10),
  // Replaced by MAX_QUERY_COMPLEXITY (another measure: a value meant for the old one would be far off).
  MAX_QUERY_COST: z
    .undefined({ error: 'was replaced by MAX_QUERY_COMPLEXITY (see docs/configuration.md): remove it' })
    .optional(),
  MAX_QUERY_COMPLEXITY: int(1, 100_000_000).default(QUERY_COMPLEXITY_DEFAULT),
  MAX_CREDENTIALS_PER_ACCOUNT: int(1, 10_000).default(REQUEST_TRANSACTION_DEFAULTS.maxCredentialsPerAccount),
  STATEMENT_TIMEOUT_MS: int(1, 3_600_000).default(REQUEST_TRANSACTION_DEFAULTS.statementTimeoutMs),
  TRUSTED_DOCUMENTS: z
    .enum(['required', 'allowed', 'off'], { error: 'must be required, allowed or off' })
    .default('allowed'),
  MAX_ALIASES: int(0, 1000).default(15),
  MAX_TOKENS: int(10, 100_000).default(2000),
  MAX_BODY_BYTES: int(1024, 100_000_000).default(102_400),
  SESSION_CACHE_TTL_MS: int(0, 300_000).default(30_000),
  METRICS_PORT: int(0, 65535).optional(),
  // Read here only to decide whether tracing is on and to refuse bad values
  // with a clear message: the OpenTelemetry SDK reads these (and the other
  // OTEL_* variables: OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_SAMPLER,
  // OTEL_TRACES_SAMPLER_ARG, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*...) itself.
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl.optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpUrl.optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol.optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol.optional(),
  OTEL_SERVICE_NAME: z.string().default('brokerage-credentials-api'),
  OTEL_SDK_DISABLED: boolean.default(false),
  ALPACA_PAPER_URL: brokerUrl.default('https://paper-api.alpaca.markets'),
  ALPACA_LIVE_URL: brokerUrl.default('https://api.alpaca.markets'),
  ALPACA_DATA_URL: brokerUrl.default('https://data.alpaca.markets'),
  BROKER_TIMEOUT_MS: int(1, 120_000).default(5000),
  ENGINE_TOKEN_TTL_SECONDS: int(1, 3600).default(600),
  ENGINE_RATE_LIMIT: int(1, 1_000_000).default(180),
  ENGINE_TOKENS_PER_CLIENT: int(1, 1000).default(20),
});

type Env = z.infer<typeof envSchema>;

/** Every variable the schema reads (docs/configuration.md lists each; test/unit/config-docs.test.ts checks it). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

/**
 * NODE_ENV alone, for the few things fixed when modules load, before
 * loadConfig runs (the schema builder's development checks). Validated by
 * the same rule; a bad value is reported by loadConfig at start.
 */
export const runtimeEnv: Env['NODE_ENV'] = envSchema.shape.NODE_ENV.catch('development').parse(
  blankAsUnset(process.env.NODE_ENV),
);

export interface Config {
  env: Env['NODE_ENV'];
  isProduction: boolean;
  host: string | undefined;
  port: number;
  logLevel: Env['LOG_LEVEL'];
  database: DatabaseOptions;
  dataDir: string;
  migrateOnStart: boolean;
  /** The key new ciphertexts are sealed with, plus older keys that still decrypt. */
  encryption: { current: EncryptionKey; previous: EncryptionKey[] };
  auth: {
    secret: string;
    baseURL: string;
    trustedOrigins: string[];
    sessionCacheTtlMs: number;
    /** Whether BETTER_AUTH_URL was given (else it follows the listening port). */
    baseURLConfigured: boolean;
  };
  /** GraphiQL and schema introspection, switched together. */
  graphiql: boolean;
  /** Proxies (addresses, CIDRs, or loopback/linklocal/uniquelocal) whose X-Forwarded-For is believed. */
  trustedProxies: string[];
  /** Abuse limits on GraphQL documents and request bodies. */
  limits: {
    depth: number;
    /** Page-aware complexity (src/graphql/complexity.ts). */
    complexity: number;
    aliases: number;
    tokens: number;
    bodyBytes: number;
    /** The most credentials one account holds (also enforced by the database). */
    credentialsPerAccount: number;
  };
  /**
   * Trusted documents (persisted operations, src/graphql/trusted-documents.ts):
   * required: only documents of the SDK's manifest, sent by hash; allowed: by
   * hash or as text; off: the manifest is not loaded.
   */
  trustedDocuments: 'required' | 'allowed' | 'off';
  /** Where credentials are verified (docs/verification.md), and how long to wait for an answer. */
  broker: { alpaca: { paperUrl: string; liveUrl: string; dataUrl: string }; timeoutMs: number };
  /** Trading-engine access (docs/engines.md): token lifetime, forwarded requests per credential per minute. */
  engine: { tokenTtlSeconds: number; rateLimitPerMinute: number; tokensPerClient: number };
  /** Prometheus metrics on their own listener (METRICS_PORT, same HOST); off when unset. */
  metrics: { port: number } | undefined;
  /**
   * OpenTelemetry traces over OTLP/HTTP; off unless an OTLP endpoint is set.
   * The SDK reads the endpoint, headers, sampler... from OTEL_* itself.
   */
  tracing: TracingConfig | undefined;
}

export interface TracingConfig {
  protocol: 'http/protobuf' | 'http/json';
  serviceName: string;
}

export interface LoadHooks {
  /**
   * Called once the environment is valid, before anything is written into
   * DATA_DIR: the server takes DATA_DIR's lock here (`embedded`: no
   * DATABASE_URL, so the database's files are in DATA_DIR).
   */
  claimDataDir?(dataDir: string, embedded: boolean): void | Promise<void>;
}

function issues(error: z.ZodError) {
  return error.issues.map((i) => ({ variable: i.path.join('.'), message: i.message }));
}

/**
 * Validates the environment. Secrets not given come from `secrets` (see
 * SecretsSource): for the server, in development, a missing ENCRYPTION_KEY
 * or BETTER_AUTH_SECRET is generated once into DATA_DIR (with a warning) so
 * data and sessions survive restarts; in production both are required.
 */
export async function loadConfig(
  rawEnv: Record<string, string | undefined> = process.env,
  warn: (message: string) => void = (m) => process.stderr.write(`WARNING: ${m}\n`),
  secrets: SecretsSource = 'server',
  hooks: LoadHooks = {},
): Promise<Config> {
  const cleaned = Object.fromEntries(Object.keys(envSchema.shape).map((k) => [k, blankAsUnset(rawEnv[k])]));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw invalid(issues(parsed.error));
  }
  const env = parsed.data;
  const transaction: RequestTransactionSettings = {
    statementTimeoutMs: env.STATEMENT_TIMEOUT_MS,
    maxCredentialsPerAccount: env.MAX_CREDENTIALS_PER_ACCOUNT,
  };
  const isProduction = env.NODE_ENV === 'production';
  const dataDir = path.resolve(env.DATA_DIR);

  if (env.DATABASE_REQUEST_URL && !env.DATABASE_URL) {
    throw invalid([{ variable: 'DATABASE_REQUEST_URL', message: 'needs DATABASE_URL as well (the owner connection)' }]);
  }
  if (env.DATABASE_LISTEN_URL && !env.DATABASE_URL) {
    throw invalid([
      { variable: 'DATABASE_LISTEN_URL', message: 'needs DATABASE_URL as well (the embedded database has no other)' },
    ]);
  }
  if (env.METRICS_PORT !== undefined && env.METRICS_PORT !== 0 && env.METRICS_PORT === env.PORT) {
    throw invalid([
      {
        variable: 'METRICS_PORT',
        message: `is PORT (${env.PORT}): metrics have a listener of their own, give it another port (or leave it unset)`,
      },
    ]);
  }
  if (isProduction && secrets === 'server') {
    const missing = (['ENCRYPTION_KEY', 'BETTER_AUTH_SECRET'] as const).filter((k) => !env[k]);
    if (missing.length > 0) {
      throw invalid(missing.map((variable) => ({ variable, message: 'required when NODE_ENV=production' })));
    }
  }

  // Before anything is written into DATA_DIR (the development secrets).
  await hooks.claimDataDir?.(dataDir, !env.DATABASE_URL);

  const needed: (keyof GeneratedSecrets)[] = [];
  if (!env.ENCRYPTION_KEY) needed.push('encryptionKey');
  if (!env.BETTER_AUTH_SECRET) needed.push('authSecret');
  const generated = await missingSecrets(secrets, needed, dataDir, !env.DATABASE_URL, warn);

  if (env.TRUSTED_DOCUMENTS === 'required' && env.GRAPHIQL === true) {
    warn('GRAPHIQL=true is ignored with TRUSTED_DOCUMENTS=required: GraphiQL sends documents that are not trusted.');
  }

  const currentKey = Buffer.from((env.ENCRYPTION_KEY ?? generated.encryptionKey) as string, 'base64');
  const current = { id: env.ENCRYPTION_KEY_ID ?? defaultKeyId(currentKey), key: currentKey };
  let previous: EncryptionKey[];
  try {
    previous = olderKeys(current, parseKeyList(env.ENCRYPTION_KEYS));
  } catch (error) {
    throw invalid([{ variable: 'ENCRYPTION_KEYS', message: (error as Error).message }]);
  }

  const port = env.PORT;
  const baseURL = env.BETTER_AUTH_URL ?? `http://localhost:${port}`;
  const trustedOrigins = [
    ...(env.BETTER_AUTH_URL ? [new URL(baseURL).origin] : localOrigins(port)),
    ...(env.TRUSTED_ORIGINS ?? []),
  ];

  return {
    env: env.NODE_ENV,
    isProduction,
    host: env.HOST,
    port,
    logLevel: env.LOG_LEVEL,
    database: env.DATABASE_URL
      ? {
          kind: 'postgres',
          url: env.DATABASE_URL,
          ...(env.DATABASE_REQUEST_URL ? { requestUrl: env.DATABASE_REQUEST_URL } : {}),
          ...(env.DATABASE_LISTEN_URL ? { listenUrl: env.DATABASE_LISTEN_URL } : {}),
          poolSize: env.DATABASE_POOL_SIZE,
          requestRole: REQUEST_ROLE,
          preparedStatements: env.DATABASE_PREPARED_STATEMENTS,
          ...transaction,
        }
      : {
          kind: 'pglite',
          dataDir: path.join(dataDir, PGDATA_DIR),
          requestRole: REQUEST_ROLE,
          ...transaction,
        },
    dataDir,
    migrateOnStart: env.MIGRATE_ON_START,
    encryption: { current, previous },
    auth: {
      secret: (env.BETTER_AUTH_SECRET ?? generated.authSecret) as string,
      baseURL,
      trustedOrigins,
      sessionCacheTtlMs: env.SESSION_CACHE_TTL_MS,
      baseURLConfigured: env.BETTER_AUTH_URL !== undefined,
    },
    // GraphiQL sends ad-hoc documents, which required trusted documents refuse.
    graphiql: env.TRUSTED_DOCUMENTS === 'required' ? false : (env.GRAPHIQL ?? !isProduction),
    trustedProxies: list(env.TRUST_PROXY),
    limits: {
      depth: env.MAX_QUERY_DEPTH,
      complexity: env.MAX_QUERY_COMPLEXITY,
      aliases: env.MAX_ALIASES,
      tokens: env.MAX_TOKENS,
      bodyBytes: env.MAX_BODY_BYTES,
      credentialsPerAccount: env.MAX_CREDENTIALS_PER_ACCOUNT,
    },
    trustedDocuments: env.TRUSTED_DOCUMENTS,
    metrics: env.METRICS_PORT === undefined ? undefined : { port: env.METRICS_PORT },
    tracing:
      (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) && !env.OTEL_SDK_DISABLED
        ? {
            protocol: env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf',
            serviceName: env.OTEL_SERVICE_NAME,
          }
        : undefined,
    broker: {
      alpaca: { paperUrl: env.ALPACA_PAPER_URL, liveUrl: env.ALPACA_LIVE_URL, dataUrl: env.ALPACA_DATA_URL },
      timeoutMs: env.BROKER_TIMEOUT_MS,
    },
    engine: {
      tokenTtlSeconds: env.ENGINE_TOKEN_TTL_SECONDS,
      rateLimitPerMinute: env.ENGINE_RATE_LIMIT,
      tokensPerClient: env.ENGINE_TOKENS_PER_CLIENT,
    },
  };
}
