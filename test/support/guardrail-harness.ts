// What the guardrail tests of the engine proxy share: the Alpaca stand-ins
// and an in-process server for the file, one engine client and its token, one
// user who owns the credentials (signing up costs a password hash), and the
// assertions every refusal makes: its status and error fields, nothing
// changed at the stand-in, and its ENGINE_REFUSED event in the audit trail.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect } from 'vitest';
import { type AlpacaStandIns, type PositionInput, type RequestCounts, startAlpacaStandIns } from './alpaca-stand-in.ts';
import { gql } from './client.ts';
import {
  accessToken,
  type EngineClientCredentials,
  type EngineResponse,
  engineRequest,
  grantedCredential,
  type Owner,
  owner,
  proxyPath,
  registerClient,
  type StoredCredential,
  setGuardrails,
} from './engine.ts';
import { type InProcessServer, startInProcess } from './in-process.ts';

export const EVENT_FIELDS =
  'id action occurredAt engineClientId engineRequest guardrailRule engineOrder { symbol side type qty notional ' +
  'clientOrderId estimatedNotional referencePrice } engineResponse { status brokerRequestId }';

export interface EngineEvent {
  id: string;
  action: string;
  occurredAt: string;
  engineClientId: string | null;
  engineRequest: string | null;
  guardrailRule: string | null;
  engineOrder: Record<string, string | null> | null;
  engineResponse: { status: number; brokerRequestId: string | null } | null;
}

export interface Usage {
  tradingDay: string;
  orders: number;
  notional: string;
}

/** A verified paper credential of the harness's user, granted to its client. */
export interface Granted {
  who: Owner;
  credential: StoredCredential;
  grantId: string;
  /** The proxy path of an Alpaca path on this credential. */
  path(alpacaPath: string): string;
}

/** What a refusal must carry. */
export interface ExpectedRefusal {
  status: 403 | 503;
  rule: string;
  /** 403 only: the limit and the order's value, as strings. */
  limit?: string;
  value?: string;
  /** What the readable message says. */
  message: RegExp;
  /** Fields the ENGINE_REFUSED event's engineOrder shows; null: it has none (no single order to summarise). */
  order?: Record<string, unknown> | null;
  /** The engineRequest of the event (default: POST /v2/orders). */
  request?: string;
}

/** Reads of the trading API and market data (everything counts() gives but total and changes). */
export type Reads = Omit<RequestCounts, 'total' | 'changes'>;

export interface GuardrailHarness {
  readonly brokers: AlpacaStandIns;
  readonly server: InProcessServer;
  readonly client: EngineClientCredentials;
  readonly token: string;
  readonly who: Owner;
  /** A credential granted with `guardrails` (the defaults when absent); `positions` at the stand-in. */
  granted(options?: {
    guardrails?: Record<string, unknown>;
    positions?: PositionInput[];
    scopes?: string[];
  }): Promise<Granted>;
  /** One engine API request with the client's token; a body object is sent as JSON. */
  send(method: string, path: string, body?: unknown): Promise<EngineResponse>;
  /** setEngineGuardrails on the grant. */
  set(setup: Granted, input: Record<string, unknown>): Promise<void>;
  /** The credential's audit trail, newest first. */
  events(setup: Granted): Promise<EngineEvent[]>;
  /** The grant's usageToday, as GraphQL shows it. */
  usage(setup: Granted): Promise<Usage>;
  /** POST, PATCH and DELETE that reached the trading API with the credential's key. */
  changes(setup: Granted): number;
  /** Reads made with the credential's key, at all three stand-ins (about `symbol` only, when given). */
  reads(setup: Granted, symbol?: string): Reads;
  /**
   * Sends a request a guardrail must refuse, and asserts the whole refusal:
   * status, code, rule, limit and value, a readable message, zero changes at
   * the stand-in, and one ENGINE_REFUSED event naming the rule.
   */
  refused(setup: Granted, method: string, alpacaPath: string, body: unknown, expected: ExpectedRefusal): Promise<void>;
  /** Sends a request that must be forwarded, and asserts that it reached the trading API (one change more). */
  passes(setup: Granted, method: string, alpacaPath: string, body?: unknown, status?: number): Promise<EngineResponse>;
}

/** A ticker the stand-in makes a tradable equity on first use, unknown to the server's asset cache. */
export function freshSymbol(prefix = 'G'): string {
  const letters = [...randomBytes(6)].map((b) => String.fromCharCode(65 + (b % 26))).join('');
  return `${prefix}${letters}`.slice(0, 8);
}

export { marketOrder as order } from './engine.ts';

const READS = ['asset', 'position', 'orders', 'order', 'quotes', 'trades'] as const;

/**
 * The harness for the enclosing file or describe block: stand-ins, an
 * in-process server (with `env` over the stand-ins' URLs), a client, a user.
 */
export function useGuardrailHarness(env: Record<string, string> = {}): GuardrailHarness {
  const state = {} as {
    brokers: AlpacaStandIns;
    server: InProcessServer;
    client: EngineClientCredentials;
    token: string;
    who: Owner;
  };
  beforeAll(async () => {
    state.brokers = await startAlpacaStandIns();
    state.server = await startInProcess({ env: { ...state.brokers.env, ...env } });
    state.client = await registerClient(state.server.db, 'guardrail tests');
    state.token = await accessToken(state.server.url, state.client);
    state.who = await owner(state.server.url);
  });
  afterAll(async () => {
    await state.server?.close();
    await state.brokers?.close();
  });

  const EVENTS = `query($id: UUID!) { credentialEvents(credentialId: $id, first: 100) { edges { node { ${EVENT_FIELDS} } } } }`;
  const USAGE =
    'query($id: UUID!) { credential(id: $id) { engineGrants { id usageToday { tradingDay orders notional } } } }';

  const harness: GuardrailHarness = {
    get brokers() {
      return state.brokers;
    },
    get server() {
      return state.server;
    },
    get client() {
      return state.client;
    },
    get token() {
      return state.token;
    },
    get who() {
      return state.who;
    },

    async granted(options = {}) {
      const { positions } = options;
      const setup = await grantedCredential(state.server.url, state.brokers.paper, state.client.clientId, {
        who: state.who,
        ...(options.scopes ? { scopes: options.scopes } : {}),
        ...(options.guardrails ? { guardrails: options.guardrails } : {}),
        ...(positions ? { behaviour: (secretKey: string) => ({ kind: 'account', secretKey, positions }) } : {}),
      });
      return { ...setup, path: (alpacaPath: string) => proxyPath(setup.credential.id, alpacaPath) };
    },

    send(method, path, body) {
      return engineRequest(state.server.url, method, path, {
        token: state.token,
        ...(body === undefined
          ? {}
          : {
              body: typeof body === 'string' ? body : JSON.stringify(body),
              headers: { 'content-type': 'application/json' },
            }),
      });
    },

    async set(setup, input) {
      await setGuardrails(state.server.url, setup.who, setup.grantId, input);
    },

    async events(setup) {
      const res = await gql<{ credentialEvents: { edges: { node: EngineEvent }[] } }>(
        state.server.url,
        EVENTS,
        { id: setup.credential.id },
        setup.who.session,
      );
      expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
      return res.body.data?.credentialEvents.edges.map((e) => e.node) ?? [];
    },

    async usage(setup) {
      const res = await gql<{ credential: { engineGrants: { id: string; usageToday: Usage }[] } }>(
        state.server.url,
        USAGE,
        { id: setup.credential.id },
        setup.who.session,
      );
      expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
      const found = res.body.data?.credential.engineGrants.find((g) => g.id === setup.grantId);
      if (!found) throw new Error('grant not found');
      return found.usageToday;
    },

    changes(setup) {
      return state.brokers.paper.counts(setup.credential.apiKey).changes;
    },

    reads(setup, symbol) {
      const counts = state.brokers.counts(setup.credential.apiKey, symbol);
      return Object.fromEntries(READS.map((k) => [k, counts[k]])) as Reads;
    },

    async refused(setup, method, alpacaPath, body, expected) {
      const changes = harness.changes(setup);
      const eventsBefore = (await harness.events(setup)).length;
      const res = await harness.send(method, setup.path(alpacaPath), body);
      const what = `${method} ${alpacaPath} ${JSON.stringify(body)} → ${res.status} ${res.text}`;
      expect(res.status, what).toBe(expected.status);
      const error = res.json?.error;
      expect(error?.code, what).toBe(expected.status === 403 ? 'GUARDRAIL_REFUSED' : 'GUARDRAIL_DATA_UNAVAILABLE');
      expect(error?.rule, what).toBe(expected.rule);
      if (expected.status === 403) {
        expect(error?.limit, what).toBe(expected.limit);
        expect(error?.value, what).toBe(expected.value);
      } else {
        expect(Object.keys(error ?? {}).sort(), what).toEqual(['code', 'message', 'rule']);
      }
      expect(typeof error?.message).toBe('string');
      expect(error.message, what).toMatch(expected.message);
      // Nothing reached the trading API.
      expect(harness.changes(setup), what).toBe(changes);
      // One event, the refusal, naming the rule.
      const trail = await harness.events(setup);
      expect(trail.length, what).toBe(eventsBefore + 1);
      const event = trail[0] as EngineEvent;
      expect(event, what).toMatchObject({
        action: 'ENGINE_REFUSED',
        engineClientId: state.client.clientId,
        engineRequest: expected.request ?? 'POST /v2/orders',
        guardrailRule: expected.rule,
        engineResponse: null,
      });
      if (expected.order === null) {
        expect(event.engineOrder, what).toBeNull();
      } else {
        const sent = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
        expect(event.engineOrder, what).toMatchObject({
          ...(method === 'POST'
            ? {
                symbol: sent.symbol,
                side: sent.side,
                type: sent.type,
                clientOrderId: sent.client_order_id ?? null,
              }
            : {}),
          ...expected.order,
        });
      }
    },

    async passes(setup, method, alpacaPath, body, status = 200) {
      const changes = harness.changes(setup);
      const res = await harness.send(method, setup.path(alpacaPath), body);
      expect(res.status, `${method} ${alpacaPath} ${JSON.stringify(body)} → ${res.status} ${res.text}`).toBe(status);
      expect(harness.changes(setup)).toBe(changes + 1);
      return res;
    },
  };
  return harness;
}
