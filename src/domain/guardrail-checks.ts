// The guardrail checks of a new order (POST v2/orders), a replacement (PATCH
// v2/orders/{id}) and the account-wide actions (DELETE v2/orders, DELETE
// v2/positions). Pure: the facts a rule needs from Alpaca are read by the
// caller and passed in.
//
// How the caller uses it (two steps, so that only what a rule of the grant
// needs is read, and concurrently):
//
//   1. plan = planOrderCheck({ guardrails, order, kind, original })
//      - plan.decided: the decision, no lookups at all (mleg, HALTED, a rule
//        that refuses on the order alone, or an order that passes whatever
//        the usage is);
//      - else plan.needs.asset: read Alpaca's asset (GET v2/assets/{symbol},
//        cacheable), then plan again with facts: { asset }. The class and
//        Alpaca's symbol decide where the other facts are read, so nothing
//        else is asked for until the asset is known.
//      - plan.needs.referencePrice / position / openSellQuantity: read them
//        concurrently (what each needs is in the need: symbol, class, ask or
//        bid). The open sell quantity leaves out the order being replaced:
//        openSellQuantity(orders, symbol, replacedOrderId) does that.
//   2. decision = checkOrder({ ...same, usage, facts }) with the usage of the
//      grant's trading day; the daily caps are decided there.
//
// A fact that a rule needs and that is missing or { ok: false } refuses with
// marketData (503) at the point that rule is reached: an earlier rule's
// refusal still wins, and a check never lets an order through for want of
// data (checks fail closed).
//
// Cancelling one order (DELETE v2/orders/{id}) and closing one position
// (DELETE v2/positions/{symbol}) always pass, in every state and against
// every limit: they reduce risk, so the proxy does not call the checks for
// them. Reads (GET) are not checked either.
import {
  type AssetFact,
  classifySymbol,
  type MultiLegOrder,
  type ParsedOrder,
  type SingleOrder,
} from './alpaca-orders.ts';
import { Decimal, divideRoundingUp, formatDecimal, groupDigits, ZERO } from './decimal.ts';
import { ASSET_CLASSES, type AssetClass, type Guardrails } from './guardrails.ts';

export type Fact<T> = { ok: true; value: T } | { ok: false };

/** What the caller read from Alpaca. A fact left out is one that was not read. */
export interface OrderFacts {
  /** Alpaca's asset for the order's symbol; value null when Alpaca does not know it (404). */
  asset?: Fact<AssetFact | null>;
  /** The latest ask (a buy) or bid (a sell), else the last trade; { ok: false } when none is above 0. */
  referencePrice?: Fact<Decimal>;
  /** The position's signed quantity (negative: short); a 404 is value ZERO. */
  position?: Fact<Decimal>;
  /** Quantity still open in sell orders in the symbol, without the order a replacement replaces. */
  openSellQuantity?: Fact<Decimal>;
}
export type FactName = keyof OrderFacts;

/** What was counted today through the grant (the trading day of tradingDay()). */
export interface Usage {
  orders: number;
  notional: Decimal;
}

/** The order to check: a new one, or a replacement with the order it replaces (as parseAlpacaOrder read it). */
export type OrderToCheck =
  | { guardrails: Guardrails; order: ParsedOrder; kind: 'new' }
  | { guardrails: Guardrails; order: ParsedOrder; kind: 'replace'; original: ParsedOrder };

export type OrderCheckInput = OrderToCheck & { usage: Usage; facts: OrderFacts };

/** The facts to read, with what the reading needs. */
export interface FactNeeds {
  /** GET v2/assets/{symbol}: the symbol as the order gave it. */
  asset?: { symbol: string };
  /** The market-data quote of this instrument: the ask for a buy, the bid for a sell. */
  referencePrice?: { symbol: string; assetClass: AssetClass; side: 'ask' | 'bid' };
  /** GET v2/positions/{symbol}: the symbol as Alpaca names positions (a crypto pair without its slash). */
  position?: { symbol: string };
  /** Open sell orders in the symbol (Alpaca's symbol; a crypto pair with its slash). */
  openSellQuantity?: { symbol: string };
}

export type OrderCheckPlan = { decided: Decision; needs?: undefined } | { decided: null; needs: FactNeeds };

/** The order as the audit trail shows it: as the order gave it; decimals as plain strings. */
export interface OrderSummary {
  symbol: string;
  side: string;
  type: string;
  qty: string | null;
  notional: string | null;
  clientOrderId: string | null;
  /** What the checks counted, rounded up at 9 decimals (the Decimal scalar's scale); null when not known. */
  estimatedNotional: string | null;
  referencePrice: string | null;
}

export type GuardrailRule =
  | 'orderClass'
  | 'tradingState'
  | 'assetClasses'
  | 'symbol'
  | 'symbols'
  | 'orderTypes'
  | 'allowExtendedHours'
  | 'maxOrderQuantity'
  | 'maxOrderNotional'
  | 'maxDailyNotional'
  | 'priceCollarPercent'
  | 'allowShortSelling'
  | 'maxDailyOrders'
  | 'allowAccountWideActions';

export interface GuardrailRefusal {
  allowed: false;
  status: 403;
  code: 'GUARDRAIL_REFUSED';
  /** The guardrail field, or orderClass, or symbol (an asset Alpaca does not know or trade). */
  rule: GuardrailRule;
  /** Plain decimal strings; for a list or state rule the allowed values joined by commas, and the order's. */
  limit: string;
  value: string;
  message: string;
  summary: OrderSummary | null;
}

export interface GuardrailDataUnavailable {
  allowed: false;
  status: 503;
  code: 'GUARDRAIL_DATA_UNAVAILABLE';
  rule: 'marketData';
  message: string;
  summary: OrderSummary | null;
  /** What could not be read (a fact, or the order a replacement replaces), and the rule that needed it. */
  missing: FactName | 'order';
  neededBy: GuardrailRule | null;
}

export interface OrderAllowed {
  allowed: true;
  /** The order's notional as the caps count it (exact); null when no rule needed it and the order alone does not give it. */
  estimatedNotional: Decimal | null;
  /** What the daily notional count adds: the estimate (a replacement: only what it adds over the original), rounded up at 9 decimals; 0 when unknown. */
  countedNotional: Decimal;
  /** The market price read, when one was. */
  referencePrice: Decimal | null;
  summary: OrderSummary;
}

export type Decision = OrderAllowed | GuardrailRefusal | GuardrailDataUnavailable;
export type Refusal = GuardrailRefusal | GuardrailDataUnavailable;

/** The account-wide actions; everything else the proxy forwards is not one. */
export type AccountWideAction = 'DELETE /v2/orders' | 'DELETE /v2/positions';

/** What an order is for: class, Alpaca's symbol, what `symbols` matches, the contract multiplier. */
interface Instrument {
  assetClass: AssetClass;
  symbol: string;
  matchKey: string;
  multiplier: number;
}

/** The decimals stored and shown by the Decimal scalar. */
const SCALE = 9;
const OPTION_MULTIPLIER = 100;
const HUNDRED = new Decimal(100);

/** A symbol Alpaca resolves to an equity or a crypto pair, never an option: letters, digits, dots (not an asset id). */
const NOT_AN_ASSET_ID = /^[A-Za-z0-9.]+$/;

function instrumentFor(symbol: string, assetClass: AssetClass): Instrument {
  const upper = symbol.toUpperCase();
  const classified = classifySymbol(upper);
  const matchKey = assetClass === 'US_OPTION' && !classified.lookup && 'root' in classified ? classified.root : upper;
  return { assetClass, symbol: upper, matchKey, multiplier: assetClass === 'US_OPTION' ? OPTION_MULTIPLIER : 1 };
}

/** Plain decimal for limit/value. */
const plain = formatDecimal;
/** A quantity or price in a message: "1,234.5". */
const shown = (d: Decimal) => groupDigits(formatDecimal(d));
/** A computed USD amount in a message, never shown below its value: "12,345.60". */
const usd = (d: Decimal) => groupDigits(d.toDecimalPlaces(2, Decimal.ROUND_UP).toFixed(2));
const roundUp = (d: Decimal) => d.toDecimalPlaces(SCALE, Decimal.ROUND_UP);

const PASS = { pass: true } as const;
/** A rule that cannot be decided yet: a fact it needs was not read (planning) or the usage is not known (planning). */
const UNDECIDED = { undecided: true } as const;
type Step = typeof PASS | typeof UNDECIDED | { refusal: Refusal };

function isStep(value: unknown): value is Step {
  return typeof value === 'object' && value !== null && ('pass' in value || 'undecided' in value || 'refusal' in value);
}

function own<T extends Decimal | null>(value: T): T {
  return (value === null ? null : new Decimal(value)) as T;
}

function ownFact(fact: Fact<Decimal> | undefined): Fact<Decimal> | undefined {
  return fact?.ok ? { ok: true, value: new Decimal(fact.value) } : fact;
}

function describeQuantity(order: SingleOrder): string {
  return order.qty !== null ? plain(order.qty) : `notional ${plain(order.notional as Decimal)}`;
}

function listed(values: readonly string[], max = 10): string {
  return values.length <= max
    ? values.join(', ')
    : `${values.slice(0, max).join(', ')} and ${values.length - max} more`;
}

/**
 * One walk through the rules. In planning, facts not given are recorded as
 * needs and their rule left undecided; in checking, a fact not given is one
 * that could not be read.
 */
class Evaluation {
  readonly needs: FactNeeds = {};
  private undecided = false;
  private readonly input: OrderToCheck;
  private readonly order: SingleOrder;
  private readonly facts: OrderFacts;
  private readonly usage: Usage | null;
  private readonly planning: boolean;
  private rule: GuardrailRule = 'orderClass';

  private readonly guardrails: Guardrails;

  constructor(input: OrderToCheck, order: SingleOrder, facts: OrderFacts, usage: Usage | null) {
    this.input = input;
    this.order = order;
    // Values from elsewhere (Prisma's Decimal is another copy of decimal.js,
    // configured for 20 digits) are taken into this module's Decimal, so that
    // every product and sum here is exact.
    const g = input.guardrails;
    this.guardrails = {
      ...g,
      maxOrderNotional: own(g.maxOrderNotional),
      maxOrderQuantity: own(g.maxOrderQuantity),
      maxDailyNotional: own(g.maxDailyNotional),
      priceCollarPercent: own(g.priceCollarPercent),
    };
    this.facts = {
      asset: facts.asset,
      referencePrice: ownFact(facts.referencePrice),
      position: ownFact(facts.position),
      openSellQuantity: ownFact(facts.openSellQuantity),
    };
    this.usage = usage && { orders: usage.orders, notional: new Decimal(usage.notional) };
    this.planning = usage === null;
  }

  private get original(): SingleOrder | null {
    return this.input.kind === 'replace' && this.input.original.orderClass !== 'mleg' ? this.input.original : null;
  }

  // ---- facts ----------------------------------------------------------------

  /** The instrument without asking for anything: null when it needs an asset not (successfully) read. */
  private peekInstrument(): Instrument | null {
    const result = this.resolveInstrument(false);
    return isStep(result) ? null : result;
  }

  private instrument(): Instrument | Step {
    return this.resolveInstrument(true);
  }

  private resolveInstrument(asking: boolean): Instrument | Step {
    const { order } = this;
    if (order.assetClass !== null) return instrumentFor(order.symbol, order.assetClass);
    const classified = classifySymbol(order.symbol);
    if (!classified.lookup) return instrumentFor(classified.symbol, classified.assetClass);
    const fact = this.facts.asset;
    if (fact === undefined || !fact.ok) {
      if (!asking) return UNDECIDED;
      if (fact === undefined && this.planning) {
        this.needs.asset = { symbol: order.symbol };
        return this.leaveUndecided();
      }
      return this.unavailable('asset', `Alpaca's asset for ${order.symbol} could not be read`);
    }
    const asset = fact.value;
    if (asset === null || !asset.tradable) {
      if (!asking) return UNDECIDED;
      return this.refuse(
        'symbol',
        'tradable',
        asset === null ? 'unknown' : 'not tradable',
        asset === null
          ? `Alpaca does not know the symbol ${order.symbol}`
          : `Alpaca marks ${asset.symbol} as not tradable`,
      );
    }
    if (asset.assetClass === null) {
      if (!asking) return UNDECIDED;
      return this.refuse(
        'assetClasses',
        this.guardrails.assetClasses.join(','),
        asset.classText,
        `asset class ${asset.classText} of ${asset.symbol} is not among assetClasses ${this.guardrails.assetClasses.join(', ')}`,
      );
    }
    return instrumentFor(asset.symbol, asset.assetClass);
  }

  /**
   * The contract multiplier from what is at hand: a ticker or a pair without
   * its slash is an equity or a crypto pair (1) even before Alpaca is asked;
   * only an asset id needs the asset to tell whether it is an option.
   */
  private peekMultiplier(): number | null {
    const instrument = this.peekInstrument();
    if (instrument !== null) return instrument.multiplier;
    const { order } = this;
    const tickerLike =
      order.assetClass === null && classifySymbol(order.symbol).lookup && NOT_AN_ASSET_ID.test(order.symbol);
    return tickerLike ? 1 : null;
  }

  private multiplier(): number | Step {
    const known = this.peekMultiplier();
    if (known !== null) return known;
    const instrument = this.instrument();
    return isStep(instrument) ? instrument : instrument.multiplier;
  }

  /**
   * Whether the facts are there: in planning, the ones not given become needs
   * (all of them, so one round of reads suffices); otherwise the first one
   * missing or not ok refuses with marketData.
   */
  private require(instrument: Instrument, names: FactName[]): Step {
    let missing = false;
    for (const name of names) {
      const fact = this.facts[name];
      if (fact === undefined && this.planning) {
        this.recordNeed(name, instrument);
        missing = true;
      } else if (fact === undefined || !fact.ok) {
        return this.unavailable(name, this.factDescription(name, instrument));
      }
    }
    return missing ? this.leaveUndecided() : PASS;
  }

  private recordNeed(name: FactName, instrument: Instrument): void {
    if (name === 'referencePrice') {
      this.needs.referencePrice = {
        symbol: instrument.symbol,
        assetClass: instrument.assetClass,
        side: this.order.side === 'buy' ? 'ask' : 'bid',
      };
    } else if (name === 'position') {
      // Alpaca names crypto positions without the slash (BTCUSD for BTC/USD).
      this.needs.position = { symbol: instrument.symbol.replace('/', '') };
    } else if (name === 'openSellQuantity') {
      this.needs.openSellQuantity = { symbol: instrument.symbol };
    }
  }

  private factDescription(name: FactName, instrument: Instrument): string {
    switch (name) {
      case 'referencePrice':
        return `the reference price of ${instrument.symbol} could not be read`;
      case 'position':
        return `the position in ${instrument.symbol} could not be read`;
      case 'openSellQuantity':
        return `the open sell orders in ${instrument.symbol} could not be read`;
      default:
        return `Alpaca's asset for ${instrument.symbol} could not be read`;
    }
  }

  private value<T>(name: 'referencePrice' | 'position' | 'openSellQuantity'): T {
    return (this.facts[name] as { ok: true; value: T }).value;
  }

  /** The reference price, when it was read and is usable (above 0). */
  private readPrice(): Decimal | null {
    const fact = this.facts.referencePrice;
    return fact?.ok && fact.value.isPositive() && !fact.value.isZero() ? fact.value : null;
  }

  private price(instrument: Instrument): Decimal | Step {
    const step = this.require(instrument, ['referencePrice']);
    if (!('pass' in step)) return step;
    const price = this.readPrice();
    return price ?? this.unavailable('referencePrice', `the reference price of ${instrument.symbol} is not above 0`);
  }

  // ---- amounts --------------------------------------------------------------

  /** Whether the order's notional depends on the reference price. */
  private static notionalNeedsPrice(order: SingleOrder): boolean {
    if (order.notional !== null) return false;
    if (order.type === 'LIMIT' || order.type === 'STOP_LIMIT') return order.side === 'sell';
    return true;
  }

  /** qty × the price the rules name × the multiplier; a notional order's amount. */
  private static notionalOf(order: SingleOrder, price: Decimal | null, multiplier: number): Decimal | null {
    if (order.notional !== null) return order.notional;
    const qty = order.qty as Decimal;
    let unit: Decimal | null;
    switch (order.type) {
      case 'LIMIT':
      case 'STOP_LIMIT': {
        const limit = order.limitPrice as Decimal;
        unit = order.side === 'buy' ? limit : price && Decimal.max(limit, price);
        break;
      }
      case 'STOP':
        unit = price && Decimal.max(order.stopPrice as Decimal, price);
        break;
      default:
        unit = price;
    }
    return unit && qty.mul(unit).mul(multiplier);
  }

  /** The order's notional, asking for what it needs. */
  private notional(order: SingleOrder): Decimal | Step {
    const multiplier = this.multiplier();
    if (isStep(multiplier)) return multiplier;
    let price: Decimal | null = null;
    if (Evaluation.notionalNeedsPrice(order)) {
      const instrument = this.instrument();
      if (isStep(instrument)) return instrument;
      const read = this.price(instrument);
      if (isStep(read)) return read;
      price = read;
    }
    return Evaluation.notionalOf(order, price, multiplier) as Decimal;
  }

  /** The order's notional, asking for what it needs (a dry run's estimate where no rule needed one). */
  estimate(): Step {
    const notional = this.notional(this.order);
    return isStep(notional) ? notional : PASS;
  }

  /** The notional from what is at hand, asking for nothing (for the summary and the count). */
  estimatedNotional(): Decimal | null {
    const multiplier = this.peekMultiplier();
    if (multiplier === null) return this.order.notional;
    return Evaluation.notionalOf(this.order, this.readPrice(), multiplier);
  }

  /** What the daily count adds: a replacement adds only what it raises over the original; a lower one gives nothing back. */
  countedNotional(): Decimal {
    const estimate = this.estimatedNotional();
    if (estimate === null) return ZERO;
    const { original } = this;
    if (original === null) return roundUp(estimate);
    const before = Evaluation.notionalOf(original, this.readPrice(), this.peekMultiplier() ?? 1);
    if (before === null) return roundUp(estimate);
    return roundUp(Decimal.max(ZERO, estimate.minus(before)));
  }

  /** Shares, coins or contracts: qty, or notional / (price × multiplier) rounded up at 9 decimals. */
  private quantity(): Decimal | Step {
    const { order } = this;
    if (order.qty !== null) return order.qty;
    const instrument = this.instrument();
    if (isStep(instrument)) return instrument;
    const price = this.price(instrument);
    if (isStep(price)) return price;
    return divideRoundingUp(order.notional as Decimal, price.mul(instrument.multiplier), SCALE);
  }

  // ---- outcomes -------------------------------------------------------------

  private leaveUndecided(): Step {
    this.undecided = true;
    return UNDECIDED;
  }

  private refuse(rule: GuardrailRule, limit: string, value: string, message: string): Step {
    return {
      refusal: {
        allowed: false,
        status: 403,
        code: 'GUARDRAIL_REFUSED',
        rule,
        limit,
        value,
        message: `Refused by the grant's guardrails: ${message}.`,
        summary: null,
      },
    };
  }

  private unavailable(missing: FactName, what: string): Step {
    return {
      refusal: {
        allowed: false,
        status: 503,
        code: 'GUARDRAIL_DATA_UNAVAILABLE',
        rule: 'marketData',
        message: `Refused: ${what}, and ${this.rule} needs it; nothing was forwarded. Try again shortly.`,
        summary: null,
        missing,
        neededBy: this.rule,
      },
    };
  }

  summary(): OrderSummary {
    const { order } = this;
    const estimate = this.estimatedNotional();
    const price = this.readPrice();
    return {
      symbol: order.symbol,
      side: order.sideText,
      type: order.typeText,
      qty: order.qty && plain(order.qty),
      notional: order.notional && plain(order.notional),
      clientOrderId: order.clientOrderId,
      estimatedNotional: estimate && plain(roundUp(estimate)),
      referencePrice: price && plain(price),
    };
  }

  // ---- the rules, in order ----------------------------------------------------

  private tradingState(): Step {
    const { guardrails, order } = this;
    const state = guardrails.tradingState;
    if (state === 'ACTIVE') return PASS;
    const value = `${order.side} ${describeQuantity(order)}`;
    if (state === 'HALTED') {
      return this.refuse(
        'tradingState',
        state,
        value,
        `tradingState is HALTED: no new or replaced order (cancelling an order and closing a position still work)`,
      );
    }
    const { original } = this;
    if (original !== null) {
      // A replacement under REDUCING: it may keep or lower the quantity, not raise it.
      const raised =
        order.qty !== null && original.qty !== null
          ? order.qty.gt(original.qty)
          : order.notional !== null && original.notional !== null
            ? order.notional.gt(original.notional)
            : true;
      if (!raised) return PASS;
      return this.refuse(
        'tradingState',
        state,
        value,
        `tradingState is REDUCING: a replacement may not raise the order's quantity (${describeQuantity(original)} to ${describeQuantity(order)})`,
      );
    }
    const instrument = this.instrument();
    if (isStep(instrument)) return instrument;
    const facts: FactName[] = order.qty === null ? ['position', 'referencePrice'] : ['position'];
    const ready = this.require(instrument, facts);
    if (!('pass' in ready)) return ready;
    const quantity = this.quantity();
    if (isStep(quantity)) return quantity;
    const position = this.value<Decimal>('position');
    // A sell shrinks a long position, a buy a short one, each up to what is held.
    const reducible = order.side === 'sell' ? position : position.neg();
    if (reducible.isPositive() && !reducible.isZero() && quantity.lte(reducible)) return PASS;
    const held = Decimal.max(ZERO, reducible);
    return this.refuse(
      'tradingState',
      state,
      value,
      `tradingState is REDUCING: a ${order.side} of ${shown(quantity)} ${instrument.symbol} is over the ${order.side === 'sell' ? 'long' : 'short'} position of ${shown(held)} held`,
    );
  }

  private assetClasses(): Step {
    const allowed = this.guardrails.assetClasses;
    if (ASSET_CLASSES.every((c) => allowed.includes(c))) return PASS;
    const instrument = this.instrument();
    if (isStep(instrument)) return instrument;
    if (allowed.includes(instrument.assetClass)) return PASS;
    return this.refuse(
      'assetClasses',
      allowed.join(','),
      instrument.assetClass,
      `asset class ${instrument.assetClass} of ${instrument.symbol} is not among assetClasses ${allowed.join(', ')}`,
    );
  }

  private symbols(): Step {
    const allowed = this.guardrails.symbols;
    if (allowed === null) return PASS;
    const instrument = this.instrument();
    if (isStep(instrument)) return instrument;
    if (allowed.includes(instrument.matchKey)) return PASS;
    const what =
      instrument.assetClass === 'US_OPTION' ? `option root ${instrument.matchKey}` : `symbol ${instrument.matchKey}`;
    return this.refuse(
      'symbols',
      allowed.join(','),
      instrument.matchKey,
      `${what} is not among symbols ${listed(allowed)}`,
    );
  }

  private orderTypes(): Step {
    const allowed = this.guardrails.orderTypes;
    const { type } = this.order;
    if (allowed.includes(type)) return PASS;
    return this.refuse(
      'orderTypes',
      allowed.join(','),
      type,
      `order type ${type} is not among orderTypes ${allowed.join(', ')}`,
    );
  }

  private allowExtendedHours(): Step {
    if (!this.order.extendedHours || this.guardrails.allowExtendedHours) return PASS;
    return this.refuse(
      'allowExtendedHours',
      'false',
      'true',
      'an extended-hours order is not allowed (allowExtendedHours is false)',
    );
  }

  private maxOrderQuantity(): Step {
    const cap = this.guardrails.maxOrderQuantity;
    if (cap === null) return PASS;
    const quantity = this.quantity();
    if (isStep(quantity)) return quantity;
    if (quantity.lte(cap)) return PASS;
    return this.refuse(
      'maxOrderQuantity',
      plain(cap),
      plain(quantity),
      `quantity ${shown(quantity)} is over maxOrderQuantity ${shown(cap)}`,
    );
  }

  private maxOrderNotional(): Step {
    const cap = this.guardrails.maxOrderNotional;
    if (cap === null) return PASS;
    const notional = this.notional(this.order);
    if (isStep(notional)) return notional;
    if (notional.lte(cap)) return PASS;
    return this.refuse(
      'maxOrderNotional',
      plain(cap),
      plain(notional),
      `estimated notional ${usd(notional)} USD is over maxOrderNotional ${shown(cap)} USD`,
    );
  }

  private maxDailyNotional(): Step {
    const cap = this.guardrails.maxDailyNotional;
    if (cap === null) return PASS;
    const notional = this.notional(this.order);
    if (isStep(notional)) return notional;
    let counted = notional;
    const { original } = this;
    if (original !== null) {
      const before = this.notional(original);
      if (isStep(before)) return before;
      counted = Decimal.max(ZERO, notional.minus(before));
    }
    if (this.usage === null) return this.leaveUndecided();
    const total = this.usage.notional.plus(counted);
    if (total.lte(cap)) return PASS;
    return this.refuse(
      'maxDailyNotional',
      plain(cap),
      plain(total),
      `${usd(counted)} USD more would bring today's notional to ${usd(total)} USD, over maxDailyNotional ${shown(cap)} USD`,
    );
  }

  private priceCollarPercent(): Step {
    const percent = this.guardrails.priceCollarPercent;
    if (percent === null) return PASS;
    const { order } = this;
    const prices: [string, Decimal][] = [];
    if ((order.type === 'LIMIT' || order.type === 'STOP_LIMIT') && order.limitPrice) {
      prices.push(['limit_price', order.limitPrice]);
    }
    if ((order.type === 'STOP' || order.type === 'STOP_LIMIT') && order.stopPrice) {
      prices.push(['stop_price', order.stopPrice]);
    }
    if (prices.length === 0) return PASS;
    const instrument = this.instrument();
    if (isStep(instrument)) return instrument;
    const reference = this.price(instrument);
    if (isStep(reference)) return reference;
    for (const [name, price] of prices) {
      // |p − ref| × 100 ≤ pct × ref: exact, no division.
      if (price.minus(reference).abs().mul(HUNDRED).lte(percent.mul(reference))) continue;
      const off = divideRoundingUp(price.minus(reference).abs().mul(HUNDRED), reference, SCALE);
      return this.refuse(
        'priceCollarPercent',
        plain(percent),
        plain(off),
        `${name} ${shown(price)} is ${groupDigits(off.toDecimalPlaces(2, Decimal.ROUND_UP).toFixed(2))}% from the reference price ${shown(reference)}, over priceCollarPercent ${shown(percent)}`,
      );
    }
    return PASS;
  }

  private allowShortSelling(): Step {
    const { order } = this;
    if (this.guardrails.allowShortSelling || order.side !== 'sell') return PASS;
    const instrument = this.instrument();
    if (isStep(instrument)) return instrument;
    if (instrument.assetClass === 'US_OPTION' && order.positionIntent === 'sell_to_open') {
      return this.refuse(
        'allowShortSelling',
        'false',
        'sell_to_open',
        `an option sell that opens a position (sell_to_open) is not allowed (allowShortSelling is false)`,
      );
    }
    // Equities and options: a sell may not exceed the long position less what
    // open sell orders will already sell. Crypto cannot be shorted at Alpaca,
    // so this is stricter than needed there; it is applied all the same so
    // that an oversell is refused here with the rule named, whatever the
    // broker would make of it.
    const facts: FactName[] = ['position', 'openSellQuantity'];
    if (order.qty === null) facts.push('referencePrice');
    const ready = this.require(instrument, facts);
    if (!('pass' in ready)) return ready;
    const quantity = this.quantity();
    if (isStep(quantity)) return quantity;
    const position = this.value<Decimal>('position');
    const openSells = this.value<Decimal>('openSellQuantity');
    const available = position.minus(openSells);
    if (quantity.lte(available)) return PASS;
    return this.refuse(
      'allowShortSelling',
      plain(Decimal.max(ZERO, available)),
      plain(quantity),
      `a sell of ${shown(quantity)} ${instrument.symbol} is over the ${shown(Decimal.max(ZERO, position))} held less ${shown(openSells)} in open sell orders (allowShortSelling is false)`,
    );
  }

  private maxDailyOrders(): Step {
    const cap = this.guardrails.maxDailyOrders;
    if (cap === null) return PASS;
    if (this.usage === null) return this.leaveUndecided();
    const total = this.usage.orders + 1;
    if (total <= cap) return PASS;
    return this.refuse(
      'maxDailyOrders',
      String(cap),
      String(total),
      `this would be order ${groupDigits(String(total))} today, over maxDailyOrders ${groupDigits(String(cap))}`,
    );
  }

  /** The first refusal, or null when every rule passed; `undecided` tells whether a rule was left open. */
  run(): { refusal: Refusal | null; undecided: boolean } {
    const rules: [GuardrailRule, () => Step][] = [
      ['tradingState', () => this.tradingState()],
      ['assetClasses', () => this.assetClasses()],
      ['symbols', () => this.symbols()],
      ['orderTypes', () => this.orderTypes()],
      ['allowExtendedHours', () => this.allowExtendedHours()],
      ['maxOrderQuantity', () => this.maxOrderQuantity()],
      ['maxOrderNotional', () => this.maxOrderNotional()],
      ['maxDailyNotional', () => this.maxDailyNotional()],
      ['priceCollarPercent', () => this.priceCollarPercent()],
      ['allowShortSelling', () => this.allowShortSelling()],
      ['maxDailyOrders', () => this.maxDailyOrders()],
    ];
    for (const [rule, check] of rules) {
      this.rule = rule;
      const step = check();
      if ('refusal' in step)
        return { refusal: { ...step.refusal, summary: this.summary() }, undecided: this.undecided };
    }
    return { refusal: null, undecided: this.undecided };
  }

  allowed(): OrderAllowed {
    const estimate = this.estimatedNotional();
    return {
      allowed: true,
      estimatedNotional: estimate,
      countedNotional: this.countedNotional(),
      referencePrice: this.readPrice(),
      summary: this.summary(),
    };
  }
}

function multiLegRefusal(order: MultiLegOrder): GuardrailRefusal {
  return {
    allowed: false,
    status: 403,
    code: 'GUARDRAIL_REFUSED',
    rule: 'orderClass',
    limit: 'simple,bracket,oco,oto',
    value: order.orderClass,
    message:
      "Refused by the grant's guardrails: a multi-leg (mleg) order is refused, as its legs are not priced by the checks.",
    summary: null,
  };
}

function singleOrders(input: OrderToCheck): SingleOrder | GuardrailRefusal {
  if (input.order.orderClass === 'mleg') return multiLegRefusal(input.order);
  if (input.kind === 'replace' && input.original.orderClass === 'mleg') return multiLegRefusal(input.original);
  return input.order;
}

/**
 * Step 1: the decision when it needs nothing from Alpaca, else the facts to
 * read. `facts.asset` is given on the second call, once the asset is read.
 */
export function planOrderCheck(input: OrderToCheck & { facts?: Pick<OrderFacts, 'asset'> }): OrderCheckPlan {
  const order = singleOrders(input);
  if ('allowed' in order) return { decided: order };
  const evaluation = new Evaluation(input, order, { asset: input.facts?.asset }, null);
  const { refusal, undecided } = evaluation.run();
  if (!undecided) return { decided: refusal ?? evaluation.allowed() };
  return { decided: null, needs: evaluation.needs };
}

/**
 * Step 2: the decision, the first failing rule refusing, in this order:
 * orderClass, tradingState, assetClasses, symbols (symbol for an asset Alpaca
 * does not know or trade), orderTypes, allowExtendedHours, maxOrderQuantity,
 * maxOrderNotional, maxDailyNotional, priceCollarPercent, allowShortSelling,
 * maxDailyOrders.
 */
export function checkOrder(input: OrderCheckInput): Decision {
  const order = singleOrders(input);
  if ('allowed' in order) return order;
  const evaluation = new Evaluation(input, order, input.facts, input.usage);
  const { refusal } = evaluation.run();
  return refusal ?? evaluation.allowed();
}

/**
 * For a dry run, which answers an allowed order's estimated notional even
 * when no rule needed it (a market order under no cap): the facts still to
 * read for it, given those read so far (the asset when the class is not
 * known yet, then the reference price). Null when there is nothing to read:
 * the estimate is known, or a read failed (it then stays unknown, as the
 * real order would still be allowed).
 */
export function estimateNeeds(input: OrderToCheck, facts: OrderFacts): FactNeeds | null {
  const order = singleOrders(input);
  if ('allowed' in order) return null;
  const evaluation = new Evaluation(input, order, facts, null);
  return 'undecided' in evaluation.estimate() ? evaluation.needs : null;
}

/**
 * The refusal of a replacement whose order (GET v2/orders/{id}) could not be
 * read: it cannot be checked, so it is not forwarded. (An order Alpaca does
 * not have is Alpaca's 404 to give; this is for a timeout, an error or a body
 * parseAlpacaOrder cannot read.)
 */
export function replacedOrderUnavailable(): GuardrailDataUnavailable {
  return {
    allowed: false,
    status: 503,
    code: 'GUARDRAIL_DATA_UNAVAILABLE',
    rule: 'marketData',
    message:
      'Refused: the order to replace could not be read, and the checks need it; nothing was forwarded. Try again shortly.',
    summary: null,
    missing: 'order',
    neededBy: null,
  };
}

/**
 * DELETE v2/orders (cancel every order of the account, other engines'
 * included) and DELETE v2/positions (close every position) need
 * allowAccountWideActions, in every trading state.
 */
export function checkAccountWideAction(
  guardrails: Guardrails,
  action: AccountWideAction,
): { allowed: true } | GuardrailRefusal {
  if (guardrails.allowAccountWideActions) return { allowed: true };
  const what = action === 'DELETE /v2/orders' ? 'cancelling every order of the account' : 'closing every position';
  return {
    allowed: false,
    status: 403,
    code: 'GUARDRAIL_REFUSED',
    rule: 'allowAccountWideActions',
    limit: 'false',
    value: action,
    message: `Refused by the grant's guardrails: ${action} (${what}) is not allowed (allowAccountWideActions is false); cancel orders or close positions one at a time.`,
    summary: null,
  };
}
