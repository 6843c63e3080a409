// An engine built on Alpaca's own TypeScript SDK (@alpacahq/alpaca-trade-api,
// set up against the proxy as docs/engines.md says: the trading base URL and
// our access token) meets a guardrail: the SDK rejects with its typed error
// for the status, whose message is the refusal's, and the rule, limit and
// value reach the engine through that error object. On the real server in-process and a real
// database, against the Alpaca stand-ins.
import { randomUUID } from 'node:crypto';
import { errors, trading } from '@alpacahq/alpaca-trade-api';
import { describe, expect, it } from 'vitest';
import { dbKind } from '../support/databases.ts';
import { freshSymbol, type Granted, useGuardrailHarness } from '../support/guardrail-harness.ts';

const h = useGuardrailHarness();

function ordersApi(setup: Granted) {
  const config = new trading.Configuration({
    basePath: `${h.server.url}/engine/v1/credentials/${setup.credential.id}/alpaca`,
    accessToken: h.token,
  });
  return new trading.OrdersApi(config);
}

/** What a call rejected with (fails when it resolved). */
async function rejection(call: Promise<unknown>): Promise<errors.ApiError> {
  const outcome = await call.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`resolved: ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(errors.ApiError);
  return outcome.error as errors.ApiError;
}

/** The body of the answer, as the SDK's error keeps it. */
async function bodyOf(error: errors.ApiError): Promise<{ error: Record<string, string> }> {
  return (await error.response.json()) as { error: Record<string, string> };
}

describe(`guardrail refusals through Alpaca's TypeScript SDK (${dbKind})`, () => {
  it('a refused order rejects with a PermissionError (403) whose response names the rule, limit, value and why', async () => {
    const symbol = freshSymbol('S');
    h.brokers.data.setPrice(symbol, { ask: '250', bid: '249.5' });
    const setup = await h.granted({ guardrails: { maxOrderNotional: '5000' } });
    const orders = ordersApi(setup);
    const changes = h.changes(setup);

    const error = await rejection(
      orders.postOrder({
        postOrderRequest: {
          symbol,
          qty: '49.3824',
          side: 'buy',
          type: 'market',
          timeInForce: 'day',
          clientOrderId: `sdk-${randomUUID()}`,
        },
      }),
    );
    expect(error).toBeInstanceOf(errors.PermissionError);
    expect(error.status).toBe(403);
    // A guardrail refusal also carries code and message where Alpaca puts them: the SDK's own error says why.
    expect(error.message).toBe(
      "Refused by the grant's guardrails: estimated notional 12,345.60 USD is over maxOrderNotional 5,000 USD.",
    );
    expect(error.code).toBe('GUARDRAIL_REFUSED');
    const { error: refusal } = await bodyOf(error);
    expect(refusal).toEqual({
      code: 'GUARDRAIL_REFUSED',
      rule: 'maxOrderNotional',
      limit: '5000',
      value: '12345.6',
      message:
        "Refused by the grant's guardrails: estimated notional 12,345.60 USD is over maxOrderNotional 5,000 USD.",
    });
    expect(h.changes(setup)).toBe(changes);
    expect((await h.events(setup))[0]).toMatchObject({ action: 'ENGINE_REFUSED', guardrailRule: 'maxOrderNotional' });

    // Within the cap, the same SDK call places the order.
    const placed = await orders.postOrder({
      postOrderRequest: { symbol, qty: '20', side: 'buy', type: 'market', timeInForce: 'day' },
    });
    expect(placed).toMatchObject({ symbol, qty: '20', status: 'accepted' });
  });

  it('a replacement refused under HALTED reaches the SDK the same way; cancelling still works', async () => {
    const setup = await h.granted();
    const orders = ordersApi(setup);
    const placed = await orders.postOrder({
      postOrderRequest: { symbol: 'AAPL', qty: '1', side: 'buy', type: 'limit', limitPrice: '150', timeInForce: 'day' },
    });
    await h.set(setup, { tradingState: 'HALTED' });
    const replaced = await rejection(
      orders.patchOrderByOrderId({ orderId: placed.id as string, patchOrderRequest: { limitPrice: '151' } }),
    );
    expect(replaced).toBeInstanceOf(errors.PermissionError);
    expect((await bodyOf(replaced)).error).toMatchObject({
      code: 'GUARDRAIL_REFUSED',
      rule: 'tradingState',
      limit: 'HALTED',
      value: 'buy 1',
      message: expect.stringMatching(/tradingState is HALTED/),
    });
    // Cancelling still works through the SDK.
    await orders.deleteOrderByOrderID({ orderId: placed.id as string });
    expect(h.brokers.paper.orders(setup.credential.apiKey)[0]?.status).toBe('canceled');
  });

  it('a fact that cannot be read rejects with an ApiError (503) naming marketData', async () => {
    const symbol = freshSymbol('S');
    const setup = await h.granted({ guardrails: { maxOrderNotional: '5000' } });
    h.brokers.failSymbol(symbol, { kind: 'status', status: 500, on: ['data'] });
    try {
      const error = await rejection(
        ordersApi(setup).postOrder({
          postOrderRequest: { symbol, qty: '1', side: 'buy', type: 'market', timeInForce: 'day' },
        }),
      );
      expect(error.status).toBe(503);
      expect(error.message).toMatch(new RegExp(`the reference price of ${symbol} could not be read`));
      expect((await bodyOf(error)).error).toEqual({
        code: 'GUARDRAIL_DATA_UNAVAILABLE',
        rule: 'marketData',
        message: expect.stringMatching(new RegExp(`the reference price of ${symbol} could not be read`)),
      });
    } finally {
      h.brokers.clearSymbol(symbol);
    }
  });
});
