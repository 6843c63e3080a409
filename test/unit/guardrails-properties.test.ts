// Properties of the guardrail checks over generated grants, orders, usage and
// facts: determinism, no exceptions, monotonicity (loosening a limit or adding
// usage never flips a decision the wrong way), exact notionals (checked
// against BigInt arithmetic), and fail-closed facts (what the plan asks for is
// what the check needs: without any one of it the order is refused with
// marketData, with exactly it the decision is the same).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AssetFact,
  isOrderError,
  type ParsedOrder,
  POSITION_INTENTS,
  parseOrder,
} from '../../src/domain/alpaca-orders.ts';
import { Decimal } from '../../src/domain/decimal.ts';
import {
  checkOrder,
  type Decision,
  type FactName,
  type OrderFacts,
  planOrderCheck,
  type Usage,
} from '../../src/domain/guardrail-checks.ts';
import {
  ASSET_CLASSES,
  applyGuardrailsInput,
  DEFAULT_GUARDRAILS,
  GUARDRAIL_FIELDS,
  type Guardrails,
  type GuardrailsInput,
  ORDER_TYPES,
} from '../../src/domain/guardrails.ts';

const RUNS = { numRuns: 400 };

// ---- exact numbers ------------------------------------------------------------

/** units × 10^-scale, kept as BigInt so the test computes without decimal.js or floats. */
interface Exact {
  units: bigint;
  scale: number;
}

function text({ units, scale }: Exact): string {
  const digits = units.toString().padStart(scale + 1, '0');
  return scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

const exact = (max: bigint, maxScale: number) =>
  fc.record({ units: fc.bigInt({ min: 1n, max }), scale: fc.integer({ min: 0, max: maxScale }) });

const times = (a: Exact, b: Exact): Exact => ({ units: a.units * b.units, scale: a.scale + b.scale });
const scaledTo = (a: Exact, scale: number) => a.units * 10n ** BigInt(scale - a.scale);
function max(a: Exact, b: Exact): Exact {
  const scale = Math.max(a.scale, b.scale);
  return scaledTo(a, scale) >= scaledTo(b, scale) ? a : b;
}
function fromDecimal(d: Decimal): Exact {
  const plain = d.toFixed();
  const point = plain.indexOf('.');
  return point === -1
    ? { units: BigInt(plain), scale: 0 }
    : { units: BigInt(plain.replace('.', '')), scale: plain.length - point - 1 };
}
function same(a: Exact, b: Exact): boolean {
  const scale = Math.max(a.scale, b.scale);
  return scaledTo(a, scale) === scaledTo(b, scale);
}

// ---- orders -------------------------------------------------------------------

const ASSET_ID = '61e69015-8549-4bfd-b9c3-01e75843f47d';
const SYMBOLS = ['AAPL', 'MSFT', 'BTC/USD', 'BTCUSD', 'AAPL250620C00100000', 'SPY250620P00400000', ASSET_ID];
const LISTABLE = ['AAPL', 'MSFT', 'BTC/USD', 'SPY', 'SPXW'];

/** What Alpaca's asset says for each symbol that needs asking. */
const ASSETS: Record<string, AssetFact[]> = {
  AAPL: [{ symbol: 'AAPL', assetClass: 'US_EQUITY', classText: 'us_equity', tradable: true }],
  MSFT: [{ symbol: 'MSFT', assetClass: 'US_EQUITY', classText: 'us_equity', tradable: true }],
  BTCUSD: [{ symbol: 'BTC/USD', assetClass: 'CRYPTO', classText: 'crypto', tradable: true }],
  [ASSET_ID]: [
    { symbol: 'SPY250620C00500000', assetClass: 'US_OPTION', classText: 'us_option', tradable: true },
    { symbol: 'MSFT', assetClass: 'US_EQUITY', classText: 'us_equity', tradable: true },
  ],
};

interface OrderSpec {
  symbol: string;
  side: 'buy' | 'sell';
  type: 'market' | 'limit' | 'stop' | 'stop_limit' | 'trailing_stop';
  qty: Exact;
  notional: Exact | null;
  limit: Exact;
  stop: Exact;
  extendedHours: boolean;
  intent: (typeof POSITION_INTENTS)[number] | undefined;
  orderClass: string;
}

const orderSpec: fc.Arbitrary<OrderSpec> = fc.record({
  symbol: fc.constantFrom(...SYMBOLS),
  side: fc.constantFrom('buy' as const, 'sell' as const),
  type: fc.constantFrom(
    'market' as const,
    'limit' as const,
    'stop' as const,
    'stop_limit' as const,
    'trailing_stop' as const,
  ),
  qty: exact(10n ** 8n, 9),
  notional: fc.option(exact(10n ** 9n, 2), { freq: 4 }),
  limit: exact(10n ** 7n, 4),
  stop: exact(10n ** 7n, 4),
  extendedHours: fc.boolean(),
  intent: fc.option(fc.constantFrom(...POSITION_INTENTS), { nil: undefined }),
  orderClass: fc.constantFrom('', 'simple', 'bracket', 'oco', 'oto', 'simple', 'mleg'),
});

function body(spec: OrderSpec): Record<string, unknown> {
  return {
    symbol: spec.symbol,
    side: spec.side,
    type: spec.type,
    ...(spec.notional ? { notional: text(spec.notional) } : { qty: text(spec.qty) }),
    ...(spec.type === 'limit' || spec.type === 'stop_limit' ? { limit_price: text(spec.limit) } : {}),
    ...(spec.type === 'stop' || spec.type === 'stop_limit' ? { stop_price: text(spec.stop) } : {}),
    ...(spec.type === 'trailing_stop' ? { trail_percent: '1.5' } : {}),
    extended_hours: spec.extendedHours,
    ...(spec.intent ? { position_intent: spec.intent } : {}),
    order_class: spec.orderClass,
    time_in_force: 'day',
  };
}

function parsed(spec: OrderSpec): ParsedOrder {
  const result = parseOrder(body(spec));
  if (isOrderError(result)) throw new Error(`${result.field}: ${result.error}`);
  return result;
}

// ---- grants, usage, facts -------------------------------------------------------

const guardrailsInput: fc.Arbitrary<GuardrailsInput> = fc.record({
  tradingState: fc.constantFrom('ACTIVE' as const, 'ACTIVE' as const, 'REDUCING' as const, 'HALTED' as const),
  symbols: fc.option(fc.subarray(LISTABLE, { minLength: 1 }), { freq: 2 }),
  assetClasses: fc.subarray([...ASSET_CLASSES], { minLength: 1 }),
  orderTypes: fc.subarray([...ORDER_TYPES], { minLength: 1 }),
  allowShortSelling: fc.boolean(),
  allowExtendedHours: fc.boolean(),
  allowAccountWideActions: fc.boolean(),
  maxOrderNotional: fc.option(exact(10n ** 13n, 2).map(text), { freq: 2 }),
  maxOrderQuantity: fc.option(exact(10n ** 10n, 3).map(text), { freq: 2 }),
  maxDailyNotional: fc.option(exact(10n ** 14n, 2).map(text), { freq: 2 }),
  maxDailyOrders: fc.option(fc.integer({ min: 1, max: 30 }), { freq: 2 }),
  priceCollarPercent: fc.option(
    fc.integer({ min: 1, max: 100_000 }).map((n) => text({ units: BigInt(n), scale: 2 })),
    { freq: 2 },
  ),
});
const guardrails = guardrailsInput.map((input) => applyGuardrailsInput(DEFAULT_GUARDRAILS, input).guardrails);

const decimal = (max: bigint, maxScale: number) => exact(max, maxScale).map((e) => new Decimal(text(e)));
const usage: fc.Arbitrary<Usage> = fc.record({
  orders: fc.integer({ min: 0, max: 30 }),
  notional: fc.oneof(fc.constant(new Decimal(0)), decimal(10n ** 14n, 2)),
});

function fact<T>(value: fc.Arbitrary<T>): fc.Arbitrary<{ ok: true; value: T } | { ok: false } | undefined> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constant({ ok: false as const }) },
    { weight: 6, arbitrary: value.map((v) => ({ ok: true as const, value: v })) },
  );
}

function assetFor(symbol: string): fc.Arbitrary<AssetFact | null> {
  const known = ASSETS[symbol] ?? [{ symbol, assetClass: 'US_EQUITY', classText: 'us_equity', tradable: true }];
  return fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...known) },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom(...known).map((a) => ({ ...a, tradable: false })) },
  );
}

const signed = decimal(10n ** 9n, 4).chain((d) => fc.constantFrom(d, d.neg(), new Decimal(0)));

function facts(symbol: string): fc.Arbitrary<OrderFacts> {
  return fc.record({
    asset: fact(assetFor(symbol)),
    referencePrice: fact(decimal(10n ** 7n, 4)),
    position: fact(signed),
    openSellQuantity: fact(fc.oneof(fc.constant(new Decimal(0)), decimal(10n ** 8n, 4))),
  });
}

/** Facts that all could be read, the asset Alpaca's true one. */
function readableFacts(symbol: string): fc.Arbitrary<Required<OrderFacts>> {
  const known = ASSETS[symbol] ?? [{ symbol, assetClass: 'US_EQUITY', classText: 'us_equity', tradable: true }];
  return fc.record({
    asset: fc.constantFrom(...known).map((value) => ({ ok: true as const, value })),
    referencePrice: decimal(10n ** 7n, 4).map((value) => ({ ok: true as const, value })),
    position: signed.map((value) => ({ ok: true as const, value })),
    openSellQuantity: fc
      .oneof(fc.constant(new Decimal(0)), decimal(10n ** 8n, 4))
      .map((value) => ({ ok: true as const, value })),
  });
}

/** A grant that lets most orders through but for its caps, so that the caps and usage decide. */
const looseGuardrails = guardrailsInput.map(
  (input) =>
    applyGuardrailsInput(DEFAULT_GUARDRAILS, {
      ...input,
      tradingState: input.tradingState === 'HALTED' ? 'ACTIVE' : input.tradingState,
      symbols: null,
      assetClasses: [...ASSET_CLASSES],
      orderTypes: [...ORDER_TYPES],
      allowExtendedHours: true,
    }).guardrails,
);

const scenario = fc.oneof(
  orderSpec.chain((spec) => fc.record({ spec: fc.constant(spec), guardrails, usage, facts: facts(spec.symbol) })),
  orderSpec.chain((spec) =>
    fc.record({ spec: fc.constant(spec), guardrails: looseGuardrails, usage, facts: readableFacts(spec.symbol) }),
  ),
);

function decide(g: Guardrails, order: ParsedOrder, f: OrderFacts, u: Usage): Decision {
  return checkOrder({ guardrails: g, order, kind: 'new', usage: u, facts: f });
}

/** The facts the plan asks for, reading them from `all` (twice: the asset first). */
function plannedFacts(g: Guardrails, order: ParsedOrder, all: OrderFacts): { names: FactName[]; facts: OrderFacts } {
  const first = planOrderCheck({ guardrails: g, order, kind: 'new' });
  if (first.decided) return { names: [], facts: {} };
  const names: FactName[] = [];
  let given: OrderFacts = {};
  let needs = first.needs;
  if (needs.asset) {
    names.push('asset');
    given = { asset: all.asset };
    const second = planOrderCheck({ guardrails: g, order, kind: 'new', facts: { asset: all.asset } });
    if (second.decided) return { names, facts: given };
    needs = second.needs;
  }
  for (const name of ['referencePrice', 'position', 'openSellQuantity'] as const) {
    if (needs[name]) {
      names.push(name);
      given = { ...given, [name]: all[name] };
    }
  }
  return { names, facts: given };
}

// ---- loosening a grant ------------------------------------------------------------

type Loosening = (g: Guardrails) => Guardrails;

const loosening: fc.Arbitrary<Loosening> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(
        'maxOrderNotional' as const,
        'maxOrderQuantity' as const,
        'maxDailyNotional' as const,
        'priceCollarPercent' as const,
      ),
      fc.oneof(fc.constant(null), decimal(10n ** 6n, 3)),
    )
    .map(
      ([field, raise]): Loosening =>
        (g) => ({ ...g, [field]: raise === null || g[field] === null ? null : (g[field] as Decimal).plus(raise) }),
    ),
  fc.oneof(fc.constant(null), fc.integer({ min: 1, max: 10 })).map(
    (raise): Loosening =>
      (g) => ({
        ...g,
        maxDailyOrders: raise === null || g.maxDailyOrders === null ? null : g.maxDailyOrders + raise,
      }),
  ),
  fc.option(fc.constantFrom(...LISTABLE)).map(
    (symbol): Loosening =>
      (g) => ({
        ...g,
        symbols: symbol === null || g.symbols === null ? null : [...new Set([...g.symbols, symbol])].sort(),
      }),
  ),
  fc.constantFrom(...ASSET_CLASSES).map(
    (c): Loosening =>
      (g) => ({ ...g, assetClasses: ASSET_CLASSES.filter((a) => a === c || g.assetClasses.includes(a)) }),
  ),
  fc.constantFrom(...ORDER_TYPES).map(
    (t): Loosening =>
      (g) => ({ ...g, orderTypes: ORDER_TYPES.filter((a) => a === t || g.orderTypes.includes(a)) }),
  ),
  fc.constantFrom('allowShortSelling' as const, 'allowExtendedHours' as const, 'allowAccountWideActions' as const).map(
    (flag): Loosening =>
      (g) => ({ ...g, [flag]: true }),
  ),
  fc.constant<Loosening>((g) => ({ ...g, tradingState: g.tradingState === 'REDUCING' ? 'ACTIVE' : g.tradingState })),
);

// ---------------------------------------------------------------------------------

describe('guardrail checks, as properties', () => {
  it('decide the same way every time and never throw, for any parsed order, grant, usage and facts', () => {
    fc.assert(
      fc.property(scenario, ({ spec, guardrails: g, usage: u, facts: f }) => {
        const order = parsed(spec);
        const first = decide(g, order, f, u);
        const second = decide(g, order, f, u);
        expect(second).toEqual(first);
        if (!first.allowed) expect(first.message.length).toBeGreaterThan(0);
        const plan = planOrderCheck({ guardrails: g, order, kind: 'new', facts: { asset: f.asset } });
        expect(planOrderCheck({ guardrails: g, order, kind: 'new', facts: { asset: f.asset } })).toEqual(plan);
      }),
      RUNS,
    );
  });

  it('never throw for whatever body parses, and name a field for whatever does not', () => {
    const value = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom('1', '0.5', '-1', '0', '1e3', 'buy', 'sell', 'limit', 'market', 'mleg', 'AAPL', 'BTC/USD'),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.jsonValue({ maxDepth: 2 }),
    );
    const keys = [
      'symbol',
      'side',
      'type',
      'order_type',
      'qty',
      'notional',
      'limit_price',
      'stop_price',
      'trail_price',
    ];
    const more = [
      'trail_percent',
      'extended_hours',
      'order_class',
      'client_order_id',
      'position_intent',
      'time_in_force',
    ];
    const loose = fc.dictionary(fc.constantFrom(...keys, ...more, 'other'), value, { maxKeys: 10 });
    fc.assert(
      fc.property(fc.oneof(loose, fc.jsonValue({ maxDepth: 3 })), guardrails, usage, facts('AAPL'), (raw, g, u, f) => {
        const result = parseOrder(raw);
        if (isOrderError(result)) {
          expect(typeof result.field).toBe('string');
          return;
        }
        const decision = decide(g, result, f, u);
        expect(typeof decision.allowed).toBe('boolean');
      }),
      RUNS,
    );
  });

  it('never turn an allowed order into a refused one when a limit is loosened', () => {
    let allowed = 0;
    fc.assert(
      fc.property(scenario, fc.array(loosening, { minLength: 1, maxLength: 4 }), (s, steps) => {
        const order = parsed(s.spec);
        const before = decide(s.guardrails, order, s.facts, s.usage);
        if (!before.allowed) return;
        allowed += 1;
        const looser = steps.reduce((g, step) => step(g), s.guardrails);
        const after = decide(looser, order, s.facts, s.usage);
        expect(after.allowed, after.allowed ? '' : `${after.rule}: ${after.message}`).toBe(true);
      }),
      { numRuns: 1500 },
    );
    expect(allowed).toBeGreaterThan(30);
  });

  it('never turn a refused order into an allowed one with more usage', () => {
    let refusedByUsage = 0;
    fc.assert(
      fc.property(scenario, fc.integer({ min: 0, max: 50 }), decimal(10n ** 12n, 2), (s, moreOrders, moreNotional) => {
        const order = parsed(s.spec);
        const before = decide(s.guardrails, order, s.facts, s.usage);
        const more = { orders: s.usage.orders + moreOrders, notional: s.usage.notional.plus(moreNotional) };
        const after = decide(s.guardrails, order, s.facts, more);
        if (!before.allowed) {
          expect(after.allowed).toBe(false);
          // A refusal for another reason stays, unless maxDailyNotional, checked
          // before priceCollarPercent and allowShortSelling, now refuses first.
          if (!after.allowed && after.rule !== 'maxDailyNotional' && after.rule !== 'maxDailyOrders') {
            expect(after).toEqual(before);
          }
        } else if (!after.allowed) {
          refusedByUsage += 1;
          expect(['maxDailyNotional', 'maxDailyOrders']).toContain(after.rule);
        }
      }),
      RUNS,
    );
    expect(refusedByUsage).toBeGreaterThan(0);
  });

  it('estimate the notional exactly as the rules name it, never lower (BigInt reference)', () => {
    const open: GuardrailsInput = {
      assetClasses: [...ASSET_CLASSES],
      allowShortSelling: true,
      allowExtendedHours: true,
      maxOrderNotional: '999999999999999999',
    };
    const g = applyGuardrailsInput(DEFAULT_GUARDRAILS, open).guardrails;
    const single = orderSpec.filter((s) => s.orderClass !== 'mleg');
    fc.assert(
      fc.property(
        single.chain((spec) => fc.record({ spec: fc.constant(spec), price: exact(10n ** 7n, 4) })),
        ({ spec, price }) => {
          const order = parsed(spec);
          const asset = ASSETS[spec.symbol]?.[0] ?? null;
          const decision = decide(
            g,
            order,
            { asset: { ok: true, value: asset }, referencePrice: { ok: true, value: new Decimal(text(price)) } },
            {
              orders: 0,
              notional: new Decimal(0),
            },
          );
          expect(decision.allowed).toBe(true);
          if (!decision.allowed) return;
          const option = spec.symbol.endsWith('00000') || asset?.assetClass === 'US_OPTION';
          let expected: Exact;
          if (spec.notional) {
            expected = spec.notional;
          } else {
            const unit =
              spec.type === 'limit' || spec.type === 'stop_limit'
                ? spec.side === 'buy'
                  ? spec.limit
                  : max(spec.limit, price)
                : spec.type === 'stop'
                  ? max(spec.stop, price)
                  : price;
            expected = times(times(spec.qty, unit), { units: option ? 100n : 1n, scale: 0 });
          }
          const estimate = decision.estimatedNotional as Decimal;
          expect(same(fromDecimal(estimate), expected), `${estimate.toFixed()} vs ${text(expected)}`).toBe(true);
          // The count is the estimate rounded up at 9 decimals: never below it.
          expect(decision.countedNotional.gte(estimate)).toBe(true);
          expect(decision.countedNotional.minus(estimate).lt(new Decimal('0.000000001'))).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it('refuse with marketData whenever a fact a rule needs is missing, and need nothing the plan did not ask for', () => {
    let checked = 0;
    const withFacts = orderSpec.chain((spec) =>
      fc.record({ spec: fc.constant(spec), guardrails, usage, facts: readableFacts(spec.symbol) }),
    );
    fc.assert(
      fc.property(withFacts, fc.boolean(), ({ spec, guardrails: g, usage: u, facts: all }, asNotOk) => {
        const order = parsed(spec);
        const full = decide(g, order, all, u);
        const { names, facts: planned } = plannedFacts(g, order, all);
        // Exactly what the plan asked for decides as all the facts do.
        const fromPlan = decide(g, order, planned, u);
        expect(fromPlan.allowed).toBe(full.allowed);
        if (!full.allowed && !fromPlan.allowed) expect(fromPlan.rule).toBe(full.rule);
        if (!full.allowed) return;
        for (const name of names) {
          checked += 1;
          const without = { ...planned, [name]: asNotOk ? { ok: false } : undefined };
          const decision = decide(g, order, without, u);
          expect(decision).toMatchObject({ allowed: false, status: 503, rule: 'marketData', missing: name });
        }
      }),
      { numRuns: 1500 },
    );
    expect(checked).toBeGreaterThan(30);
  });
});

describe('guardrail changes, as properties', () => {
  it('name only given fields, and applying the same change twice changes nothing the second time', () => {
    fc.assert(
      fc.property(guardrails, guardrailsInput, fc.subarray([...GUARDRAIL_FIELDS]), (current, full, fields) => {
        const input = Object.fromEntries(fields.map((f) => [f, full[f]])) as GuardrailsInput;
        const once = applyGuardrailsInput(current, input);
        for (const field of once.changed) expect(fields).toContain(field);
        expect(applyGuardrailsInput(once.guardrails, input).changed).toEqual([]);
        expect(applyGuardrailsInput(current, {}).changed).toEqual([]);
      }),
      RUNS,
    );
  });
});
