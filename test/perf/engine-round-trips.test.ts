// Database round trips per engine request, counted at the driver as in
// ./round-trips.test.ts (every message the server's pools or PGlite receive).
// The engine API's bookkeeping is one SQL function per step, each sent with
// its scope as one message (src/engine/admission.ts): a forwarded read costs
// one round trip before it goes out and one after Alpaca answered (its
// answer beside the event); an order adds the read of its grant's limits
// first. A change that adds a round trip fails here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlpacaStandIns, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { dbKind } from '../support/databases.ts';
import {
  accessToken,
  type EngineClientCredentials,
  engineRequest,
  grantedCredential,
  marketOrder,
  proxyPath,
  registerClient,
} from '../support/engine.ts';
import { type InProcessServer, startInProcess } from '../support/in-process.ts';
import { countStatements } from '../support/statement-counter.ts';

let brokers: AlpacaStandIns;
let server: InProcessServer;
let client: EngineClientCredentials;
let token: string;
let recording: string[] | undefined;

beforeAll(async () => {
  brokers = await startAlpacaStandIns();
  server = await startInProcess({
    env: brokers.env,
    instrument: countStatements((sql) => recording?.push(sql)),
  });
  client = await registerClient(server.db, 'round trips');
  token = await accessToken(server.url, client);
});
afterAll(async () => {
  await brokers?.close();
  await server?.close();
});

/** The messages one engine request sent, each named by the function it called. */
async function messagesOf(request: () => Promise<{ status: number }>, status: number): Promise<string[]> {
  const seen: string[] = [];
  recording = seen;
  try {
    expect((await request()).status).toBe(status);
  } finally {
    recording = undefined;
  }
  return seen.map((sql) => /engine_\w+/.exec(sql)?.[0] ?? sql.replace(/\s+/g, ' ').slice(0, 60));
}

const order = (overrides: Record<string, unknown> = {}) => JSON.stringify(marketOrder(overrides));

describe(`database round trips per engine request (${dbKind})`, () => {
  it('a forwarded read: one message before it goes out, one after Alpaca answered', async () => {
    const { credential } = await grantedCredential(server.url, brokers.paper, client.clientId);
    const messages = await messagesOf(
      () => engineRequest(server.url, 'GET', proxyPath(credential.id, 'v2/account'), { token }),
      200,
    );
    console.info(`engine GET round trips (${dbKind}): ${messages.length}: ${messages.join(', ')}`);
    expect(messages).toEqual(['engine_admit', 'engine_record_response']);
  });

  it('an order: its limits read, then admitted, then its answer recorded; a refused one recorded instead', async () => {
    const { credential } = await grantedCredential(server.url, brokers.paper, client.clientId);
    const placed = await messagesOf(
      () => engineRequest(server.url, 'POST', proxyPath(credential.id, 'v2/orders'), { token, body: order() }),
      200,
    );
    console.info(`engine order round trips (${dbKind}): ${placed.length}: ${placed.join(', ')}`);
    expect(placed).toEqual(['engine_authorize', 'engine_admit', 'engine_record_response']);
    const refused = await messagesOf(
      () =>
        engineRequest(server.url, 'POST', proxyPath(credential.id, 'v2/orders'), {
          token,
          body: order({ type: 'limit', limit_price: '100', extended_hours: true }),
        }),
      403,
    );
    expect(refused).toEqual(['engine_authorize', 'engine_refuse']);
  });

  it('the grant list: one message, whatever the number of owners', async () => {
    const messages = await messagesOf(() => engineRequest(server.url, 'GET', '/engine/v1/grants', { token }), 200);
    expect(messages).toEqual(['engine_client_grants']);
  });
});
