// A replacement (PATCH v2/orders/{id}) under a grant's guardrails, through the
// proxy on the real server in-process and a real database, against the Alpaca
// stand-ins: the order is read from Alpaca, the changes are laid over it, and
// the result is checked as a new order; it counts one order and, toward the
// daily notional, only what it adds; the trading states hold it to what they
// allow; the order it replaces is not among the open sells.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dbKind } from '../support/databases.ts';
import { freshSymbol, type Granted, order, useGuardrailHarness } from '../support/guardrail-harness.ts';

const h = useGuardrailHarness();

/** A fresh equity quoted at 100 / 99. */
function priced(): string {
  const symbol = freshSymbol('R');
  h.brokers.data.setPrice(symbol, { ask: '100', bid: '99', last: '99.5' });
  return symbol;
}

/** Places an order that must pass; its id at Alpaca. */
async function place(setup: Granted, body: Record<string, unknown>): Promise<string> {
  return (await h.passes(setup, 'POST', 'v2/orders', body)).json.id as string;
}

/** A replacement that must pass; the new order's id. */
async function replace(setup: Granted, id: string, changes: Record<string, unknown>): Promise<string> {
  const res = await h.passes(setup, 'PATCH', `v2/orders/${id}`, changes);
  expect(res.json.replaces).toBe(id);
  return res.json.id as string;
}

const PATCH = 'PATCH /v2/orders/{id}';

describe(`guardrails of a replacement (${dbKind})`, () => {
  it('reads the order from Alpaca and lays the changes over it: a raised qty or price is checked against the caps', async () => {
    const symbol = priced();
    const setup = await h.granted({ guardrails: { maxOrderQuantity: '10', maxOrderNotional: '1000' } });
    const id = await place(setup, order({ symbol, type: 'limit', qty: '5', limit_price: '100' }));

    const orderReads = h.reads(setup).order;
    await h.refused(
      setup,
      'PATCH',
      `v2/orders/${id}`,
      { qty: '11' },
      {
        status: 403,
        rule: 'maxOrderQuantity',
        limit: '10',
        value: '11',
        message: /quantity 11 is over maxOrderQuantity 10/,
        request: PATCH,
        order: { symbol, side: 'buy', type: 'limit', qty: '11', estimatedNotional: '1100' },
      },
    );
    // The original was read at Alpaca, by its id.
    expect(h.reads(setup).order).toBe(orderReads + 1);
    const read = h.brokers.paper.requests
      .filter((r) => r.apiKey === setup.credential.apiKey && r.kind === 'order')
      .at(-1);
    expect(read?.path).toBe(`/v2/orders/${id}`);

    // Only the price changes: the original's qty (5) is laid under it. 5 × 200.01 is over the cap.
    await h.refused(
      setup,
      'PATCH',
      `v2/orders/${id}`,
      { limit_price: '200.01' },
      {
        status: 403,
        rule: 'maxOrderNotional',
        limit: '1000',
        value: '1000.05',
        message: /estimated notional 1,000\.05 USD is over maxOrderNotional 1,000 USD/,
        request: PATCH,
        order: { qty: '5', estimatedNotional: '1000.05' },
      },
    );
    // Within both caps (equal to them): forwarded, and Alpaca has the replacement.
    const next = await replace(setup, id, { qty: '10' });
    expect(h.brokers.paper.orders(setup.credential.apiKey).find((o) => o.id === next)).toMatchObject({
      qty: '10',
      limit_price: '100',
      replaces: id,
    });
    const event = (await h.events(setup))[0];
    expect(event).toMatchObject({
      action: 'ENGINE_REQUEST',
      engineRequest: PATCH,
      engineOrder: { symbol, side: 'buy', type: 'limit', qty: '10', estimatedNotional: '1000' },
      engineResponse: { status: 200 },
    });
  });

  it('counts one order and, toward maxDailyNotional, only what it adds; a lower notional gives nothing back', async () => {
    const symbol = priced();
    const setup = await h.granted({ guardrails: { maxDailyNotional: '2000' } });
    const first = await place(setup, order({ symbol, type: 'limit', qty: '10', limit_price: '100' }));
    expect(await h.usage(setup)).toMatchObject({ orders: 1, notional: '1000' });

    // 10 × 120 over 10 × 100: 200 more.
    const second = await replace(setup, first, { limit_price: '120' });
    expect(await h.usage(setup)).toMatchObject({ orders: 2, notional: '1200' });
    // Lower (900): counted as an order, nothing given back.
    const third = await replace(setup, second, { limit_price: '90' });
    expect(await h.usage(setup)).toMatchObject({ orders: 3, notional: '1200' });
    // 20 × 90 adds 900 over the 900 it replaces: 2100 is over the cap.
    await h.refused(
      setup,
      'PATCH',
      `v2/orders/${third}`,
      { qty: '20' },
      {
        status: 403,
        rule: 'maxDailyNotional',
        limit: '2000',
        value: '2100',
        message: /900\.00 USD more would bring today's notional to 2,100\.00 USD, over maxDailyNotional 2,000 USD/,
        request: PATCH,
        order: { qty: '20', estimatedNotional: '1800' },
      },
    );
    expect(await h.usage(setup)).toMatchObject({ orders: 3, notional: '1200' });
    // 20 × 85 adds 800: exactly the cap.
    await replace(setup, third, { qty: '20', limit_price: '85' });
    expect(await h.usage(setup)).toMatchObject({ orders: 4, notional: '2000' });
  });

  it('counts toward maxDailyOrders like a new order', async () => {
    const setup = await h.granted({ guardrails: { maxDailyOrders: 2 } });
    const id = await place(setup, order({ type: 'limit', limit_price: '100' }));
    const next = await replace(setup, id, { limit_price: '101' });
    await h.refused(
      setup,
      'PATCH',
      `v2/orders/${next}`,
      { limit_price: '102' },
      {
        status: 403,
        rule: 'maxDailyOrders',
        limit: '2',
        value: '3',
        message: /this would be order 3 today, over maxDailyOrders 2/,
        request: PATCH,
      },
    );
    expect((await h.usage(setup)).orders).toBe(2);
  });

  it('HALTED refuses every replacement; REDUCING refuses one that raises the quantity and lets through one that does not', async () => {
    const symbol = priced();
    const setup = await h.granted({ positions: [{ symbol, qty: 10 }] });
    const id = await place(setup, order({ symbol, side: 'sell', type: 'limit', qty: '4', limit_price: '100' }));

    await h.set(setup, { tradingState: 'HALTED' });
    for (const [changes, value] of [
      [{ limit_price: '101' }, 'sell 4'],
      [{ qty: '2' }, 'sell 2'],
    ] as const) {
      await h.refused(setup, 'PATCH', `v2/orders/${id}`, changes, {
        status: 403,
        rule: 'tradingState',
        limit: 'HALTED',
        value,
        message: /tradingState is HALTED: no new or replaced order/,
        request: PATCH,
        order: { symbol, side: 'sell', type: 'limit' },
      });
    }

    await h.set(setup, { tradingState: 'REDUCING' });
    await h.refused(
      setup,
      'PATCH',
      `v2/orders/${id}`,
      { qty: '5' },
      {
        status: 403,
        rule: 'tradingState',
        limit: 'REDUCING',
        value: 'sell 5',
        message: /tradingState is REDUCING: a replacement may not raise the order's quantity \(4 to 5\)/,
        request: PATCH,
        order: { qty: '5' },
      },
    );
    const lower = await replace(setup, id, { qty: '3', limit_price: '102' });
    const same = await replace(setup, lower, { limit_price: '103' });
    // The other rules still apply.
    await h.set(setup, { priceCollarPercent: '10' });
    await h.refused(
      setup,
      'PATCH',
      `v2/orders/${same}`,
      { limit_price: '150' },
      {
        status: 403,
        rule: 'priceCollarPercent',
        limit: '10',
        value: '51.515151516',
        message: /limit_price 150 is 51.52% from the reference price 99, over priceCollarPercent 10/,
        request: PATCH,
      },
    );
  });

  it('leaves the order it replaces out of the open sells: a sell replaced at its own quantity passes', async () => {
    const symbol = priced();
    const setup = await h.granted({ positions: [{ symbol, qty: 5 }] });
    const id = await place(setup, order({ symbol, side: 'sell', type: 'limit', qty: '5', limit_price: '100' }));
    // A new sell: the open one already sells everything held.
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol, side: 'sell', qty: '1' }), {
      status: 403,
      rule: 'allowShortSelling',
      limit: '0',
      value: '1',
      message: /over the 5 held less 5 in open sell orders/,
    });
    // Replacing that sell at the same quantity is no oversell.
    const next = await replace(setup, id, { limit_price: '101' });
    await h.refused(
      setup,
      'PATCH',
      `v2/orders/${next}`,
      { qty: '6' },
      {
        status: 403,
        rule: 'allowShortSelling',
        limit: '5',
        value: '6',
        message: /a sell of 6 \S+ is over the 5 held less 0 in open sell orders/,
        request: PATCH,
      },
    );
  });

  it('answers 400 naming the field for a change the checks cannot read, and forwards nothing', async () => {
    const setup = await h.granted();
    const id = await place(setup, order({ type: 'limit', limit_price: '100' }));
    const changes = h.changes(setup);
    const events = (await h.events(setup)).length;
    for (const [body, field] of [
      [{ qty: 'ten' }, 'qty'],
      [{ limit_price: '-1' }, 'limit_price'],
      [{ time_in_force: 5 }, 'time_in_force'],
      [[1, 2], 'body'],
    ] as const) {
      const res = await h.send('PATCH', setup.path(`v2/orders/${id}`), body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.error.code).toBe('BAD_REQUEST');
      expect(res.json.error.message).toMatch(field === 'body' ? /JSON object/ : new RegExp(`^${field}: `));
    }
    expect(h.changes(setup)).toBe(changes);
    expect((await h.events(setup)).length).toBe(events);
  });

  it('answers 404 for an order Alpaca does not have: nothing to replace, nothing forwarded', async () => {
    const setup = await h.granted();
    const changes = h.changes(setup);
    const res = await h.send('PATCH', setup.path(`v2/orders/${randomUUID()}`), { qty: '2' });
    expect(res.status).toBe(404);
    expect(res.json.error).toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringMatching(/no order with this id/),
    });
    expect(h.changes(setup)).toBe(changes);
  });
});
