// Helpers for the trading-engine tests (docs/engines.md): an engine
// client and its token, engine API calls (over fetch, as an engine would, or
// over node:http when the path must travel exactly as written: fetch resolves
// dot segments before sending), and a user with a verified Alpaca credential.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Database } from '../../src/db/database.ts';
import { createEngineClient, type NewEngineClient } from '../../src/engine/clients.ts';
import type { AlpacaStandIn, StandInBehaviour } from './alpaca-stand-in.ts';
import { gql, type Session, signUp } from './client.ts';

export type EngineClientCredentials = NewEngineClient;

/** Registers a client the way the CLI does (same function, in-process). */
export function registerClient(db: Database, name = `engine-${randomUUID().slice(0, 8)}`) {
  return createEngineClient(db.unscopedClient, name);
}

export interface TokenResponse {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

/** POST to the token endpoint with client_secret_basic (default) or client_secret_post. */
export async function requestToken(
  url: string,
  client: { clientId: string; clientSecret: string },
  how: 'basic' | 'post' = 'basic',
  form: Record<string, string> = { grant_type: 'client_credentials' },
): Promise<TokenResponse> {
  const body = new URLSearchParams(form);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (how === 'basic') {
    const encode = (v: string) => encodeURIComponent(v);
    headers.authorization = `Basic ${Buffer.from(`${encode(client.clientId)}:${encode(client.clientSecret)}`).toString('base64')}`;
  } else {
    body.set('client_id', client.clientId);
    body.set('client_secret', client.clientSecret);
  }
  const res = await fetch(`${url}/engine/v1/oauth/token`, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: JSON.parse(text) as Record<string, unknown>, text };
}

export async function accessToken(url: string, client: { clientId: string; clientSecret: string }): Promise<string> {
  const res = await requestToken(url, client);
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${res.text}`);
  return res.body.access_token as string;
}

export interface EngineResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The JSON body, or undefined when it is none. */
  json: any;
}

/**
 * One engine API request over node:http: `path` is sent byte for byte as
 * written (no normalisation), and every response header is seen as sent.
 */
export function engineRequest(
  url: string,
  method: string,
  path: string,
  options: { token?: string; body?: string | Buffer; headers?: Record<string, string>; chunked?: boolean } = {},
): Promise<EngineResponse> {
  const { hostname, port } = new URL(url);
  const headers: Record<string, string> = {
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    ...(options.body !== undefined && !options.chunked
      ? { 'content-length': String(Buffer.byteLength(options.body)) }
      : {}),
    ...options.headers,
  };
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

export const proxyPath = (credentialId: string, alpacaPath: string) =>
  `/engine/v1/credentials/${credentialId}/alpaca/${alpacaPath}`;

export interface Owner {
  session: Session;
  accountId: string;
}

export async function owner(url: string): Promise<Owner> {
  const session = await signUp(url);
  const res = await gql(url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
  return { session, accountId: res.body.data?.getOrCreateAccount.account.id };
}

/** A new order's body: 1 share of AAPL at market, a fresh client_order_id, unless overridden. */
export const marketOrder = (
  overrides: Record<string, unknown> = {},
): { client_order_id: string; [field: string]: unknown } => ({
  symbol: 'AAPL',
  qty: '1',
  side: 'buy',
  type: 'market',
  time_in_force: 'day',
  client_order_id: `co-${randomUUID()}`,
  ...overrides,
});

export const randomKey = (prefix: string) => `${prefix}${randomUUID().replaceAll('-', '').slice(0, 18).toUpperCase()}`;

export interface StoredCredential {
  id: string;
  apiKey: string;
  secretKey: string;
}

export async function storeCredential(
  url: string,
  who: Owner,
  options: { apiKey?: string; secretKey?: string; credentialType?: string; nickname?: string } = {},
): Promise<StoredCredential> {
  const apiKey = options.apiKey ?? randomKey('PK');
  const secretKey = options.secretKey ?? `sk-${randomUUID()}`;
  const res = await gql(
    url,
    'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }',
    {
      input: {
        accountId: who.accountId,
        credentialType: options.credentialType ?? 'alpaca',
        apiKey,
        secretKey,
        ...(options.nickname ? { nickname: options.nickname } : {}),
      },
    },
    who.session,
  );
  if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
  return { id: res.body.data?.storeCredential.id as string, apiKey, secretKey };
}

export async function verify(url: string, who: Owner, id: string): Promise<Record<string, unknown>> {
  const res = await gql(
    url,
    'mutation($id: UUID!) { verifyCredential(id: $id) { verification { status environment } } }',
    { id },
    who.session,
  );
  if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
  return res.body.data?.verifyCredential.verification;
}

export const GRANT =
  'mutation($input: GrantEngineAccessInput!) { grantEngineAccess(input: $input) { id scopes expiresAt revokedAt isActive client { id name } } }';

export async function grant(
  url: string,
  who: Owner,
  input: {
    credentialId: string;
    clientId: string;
    scopes: string[];
    expiresAt?: string | null;
    guardrails?: Record<string, unknown>;
  },
): Promise<{ id: string }> {
  const res = await gql(url, GRANT, { input }, who.session);
  if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
  return res.body.data?.grantEngineAccess;
}

export async function revokeGrant(url: string, who: Owner, id: string) {
  return gql(
    url,
    'mutation($id: UUID!) { revokeEngineAccess(id: $id) { id revokedAt isActive } }',
    { id },
    who.session,
  );
}

/** setEngineGuardrails on a grant; throws on any error. */
export async function setGuardrails(url: string, who: Owner, grantId: string, input: Record<string, unknown>) {
  const res = await gql(
    url,
    'mutation($id: UUID!, $input: EngineGuardrailsInput!) { setEngineGuardrails(grantId: $id, input: $input) { id guardrails { tradingState } } }',
    { id: grantId, input },
    who.session,
  );
  if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
  return res.body.data?.setEngineGuardrails;
}

/**
 * A user with an Alpaca credential whose keys `stand` knows (`behaviour`,
 * valid keys by default), verified there, and granted to `clientId`, with
 * `guardrails` (the defaults when left out).
 */
export async function grantedCredential(
  url: string,
  stand: AlpacaStandIn,
  clientId: string,
  options: {
    scopes?: string[];
    apiKeyPrefix?: string;
    behaviour?: (secretKey: string) => StandInBehaviour;
    /** An existing user (signing up costs a password hash). */
    who?: Owner;
    guardrails?: Record<string, unknown>;
  } = {},
) {
  const who = options.who ?? (await owner(url));
  const credential = await storeCredential(url, who, { apiKey: randomKey(options.apiKeyPrefix ?? 'PK') });
  stand.setKey(credential.apiKey, { kind: 'account', secretKey: credential.secretKey });
  const verification = await verify(url, who, credential.id);
  if (verification.status !== 'VERIFIED') throw new Error(`not verified: ${JSON.stringify(verification)}`);
  if (options.behaviour) stand.setKey(credential.apiKey, options.behaviour(credential.secretKey));
  const granted = await grant(url, who, {
    credentialId: credential.id,
    clientId,
    scopes: options.scopes ?? ['TRADE'],
    ...(options.guardrails ? { guardrails: options.guardrails } : {}),
  });
  return { who, credential, grantId: granted.id };
}

/** Requests a stand-in received with this API key. */
export const received = (stand: AlpacaStandIn, apiKey: string) => stand.requests.filter((r) => r.apiKey === apiKey);

export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
