// The facts the guardrail checks ask for (src/domain/guardrail-checks.ts),
// read from Alpaca with the credential's own keys: an asset (its class,
// symbol, whether it trades), the reference price (the latest quote, else the
// latest trade for a stock), a position, the quantity in open sell orders,
// and the order a replacement replaces. Independent reads of one request run
// concurrently. Every read either yields its value or fails ({ ok: false }):
// a timeout, an error status, an unreadable body, nothing above zero for a
// price. The checks then refuse (fail closed).
//
// Assets are cached per process: an asset's class and symbol do not change
// (a delisting makes it untradable, which the cache keeps for at most a day).
import { LRUCache } from 'lru-cache';
import type { AlpacaClient, AlpacaKeys, ReadRequest } from '../brokers/alpaca.ts';
import {
  type AssetFact,
  isOrderError,
  openSellQuantity,
  type ParsedOrder,
  parseAlpacaAsset,
  parseAlpacaOrder,
  parseAlpacaPosition,
} from '../domain/alpaca-orders.ts';
import { type Decimal, parseDecimal, parseJsonExact, ZERO } from '../domain/decimal.ts';
import type { Fact, FactNeeds, OrderFacts } from '../domain/guardrail-checks.ts';
import type { BrokerEnvironment } from '../domain/verification.ts';

/** Most open sell orders one read returns (Alpaca's page limit): a full page may hide more, so it does not count. */
const OPEN_ORDERS_PAGE = 500;

const FAILED = { ok: false } as const;
const ok = <T>(value: T): Fact<T> => ({ ok: true, value });

/** Known assets for a day, unknown symbols (404) for five minutes: a listing can appear. */
const KNOWN_ASSET_TTL_MS = 24 * 60 * 60 * 1000;
const UNKNOWN_ASSET_TTL_MS = 5 * 60 * 1000;

/** The per-process cache of Alpaca's assets, by environment and symbol as the order gave it. */
export class AssetCache {
  readonly #cache = new LRUCache<string, { asset: AssetFact | null }>({ max: 10_000 });

  get(environment: BrokerEnvironment, symbol: string): { asset: AssetFact | null } | undefined {
    return this.#cache.get(`${environment}:${symbol.toUpperCase()}`);
  }

  set(environment: BrokerEnvironment, symbol: string, asset: AssetFact | null): void {
    this.#cache.set(
      `${environment}:${symbol.toUpperCase()}`,
      { asset },
      { ttl: asset ? KNOWN_ASSET_TTL_MS : UNKNOWN_ASSET_TTL_MS },
    );
  }
}

export interface FactReader {
  /** Alpaca's asset for a symbol (value null: Alpaca does not know it). */
  asset(symbol: string): Promise<Fact<AssetFact | null>>;
  /** Everything else the plan asked for, read concurrently. */
  facts(needs: FactNeeds): Promise<OrderFacts>;
  /** The order a replacement replaces (absent: Alpaca has no such order). */
  order(orderId: string): Promise<Fact<ParsedOrder> | { ok: false; absent: true }>;
}

export interface FactReaderOptions {
  alpaca: AlpacaClient;
  assets: AssetCache;
  environment: BrokerEnvironment;
  keys: AlpacaKeys;
  /** A replacement's order: left out of the open sell quantity. */
  replacedOrderId?: string;
}

const segment = (value: string) => encodeURIComponent(value);

export function createFactReader({
  alpaca,
  assets,
  environment,
  keys,
  replacedOrderId,
}: FactReaderOptions): FactReader {
  /** The answer's JSON (numbers kept exact), or undefined when there is none to read: status not 200, failed, unreadable. */
  async function readJson(
    request: Omit<ReadRequest, 'environment' | 'keys'>,
    accept: (status: number) => boolean = (s) => s === 200,
  ): Promise<{ status: number; json: unknown } | undefined> {
    const result = await alpaca.read({ ...request, environment, keys });
    if (result.kind !== 'answered' || !accept(result.status)) return undefined;
    if (result.status !== 200) return { status: result.status, json: null };
    try {
      return { status: 200, json: parseJsonExact(result.text) };
    } catch {
      return undefined;
    }
  }

  async function asset(symbol: string): Promise<Fact<AssetFact | null>> {
    const cached = assets.get(environment, symbol);
    if (cached) return ok(cached.asset);
    const read = await readJson(
      { host: 'trading', path: `v2/assets/${segment(symbol)}`, request: 'GET /v2/assets/{symbol}' },
      (s) => s === 200 || s === 404,
    );
    if (!read) return FAILED;
    if (read.status === 404) {
      assets.set(environment, symbol, null);
      return ok(null);
    }
    const fact = parseAlpacaAsset(read.json);
    if (!fact) return FAILED;
    assets.set(environment, symbol, fact);
    return ok(fact);
  }

  // Above zero: Alpaca's 0 means no active ask or bid (decimal.js counts 0 as positive).
  const positive = (value: unknown): Decimal | null => {
    const price = parseDecimal(value);
    return price?.gt(0) ? price : null;
  };
  const field = (value: unknown, key: string): unknown =>
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;

  /** The ask (a buy) or bid (a sell); for a stock without one above zero, the last trade. */
  async function referencePrice(need: NonNullable<FactNeeds['referencePrice']>): Promise<Fact<Decimal>> {
    const quoteKey = need.side === 'ask' ? 'ap' : 'bp';
    if (need.assetClass === 'US_EQUITY') {
      const quote = await readJson({
        host: 'data',
        path: `v2/stocks/${segment(need.symbol)}/quotes/latest`,
        request: 'GET /v2/stocks/{symbol}/quotes/latest',
      });
      const fromQuote = positive(field(field(quote?.json, 'quote'), quoteKey));
      if (fromQuote) return ok(fromQuote);
      const trade = await readJson({
        host: 'data',
        path: `v2/stocks/${segment(need.symbol)}/trades/latest`,
        request: 'GET /v2/stocks/{symbol}/trades/latest',
      });
      const fromTrade = positive(field(field(trade?.json, 'trade'), 'p'));
      return fromTrade ? ok(fromTrade) : FAILED;
    }
    const read =
      need.assetClass === 'CRYPTO'
        ? await readJson({
            host: 'data',
            path: 'v1beta3/crypto/us/latest/quotes',
            query: `symbols=${segment(need.symbol)}`,
            request: 'GET /v1beta3/crypto/us/latest/quotes',
          })
        : await readJson({
            host: 'data',
            path: 'v1beta1/options/quotes/latest',
            query: `symbols=${segment(need.symbol)}`,
            request: 'GET /v1beta1/options/quotes/latest',
          });
    const price = positive(field(field(field(read?.json, 'quotes'), need.symbol), quoteKey));
    return price ? ok(price) : FAILED;
  }

  /** The signed quantity held; a position Alpaca does not have (404) is zero. */
  async function position(symbol: string): Promise<Fact<Decimal>> {
    const read = await readJson(
      { host: 'trading', path: `v2/positions/${segment(symbol)}`, request: 'GET /v2/positions/{symbol}' },
      (s) => s === 200 || s === 404,
    );
    if (!read) return FAILED;
    if (read.status === 404) return ok(ZERO);
    const qty = parseAlpacaPosition(read.json);
    return qty ? ok(qty) : FAILED;
  }

  async function openSells(symbol: string): Promise<Fact<Decimal>> {
    const read = await readJson({
      host: 'trading',
      path: 'v2/orders',
      query: `status=open&side=sell&nested=true&limit=${OPEN_ORDERS_PAGE}&symbols=${segment(symbol)}`,
      request: 'GET /v2/orders',
    });
    if (!read || !Array.isArray(read.json) || read.json.length >= OPEN_ORDERS_PAGE) return FAILED;
    const total = openSellQuantity(read.json, symbol, replacedOrderId);
    return total ? ok(total) : FAILED;
  }

  return {
    asset,
    async facts(needs) {
      const [price, held, selling] = await Promise.all([
        needs.referencePrice ? referencePrice(needs.referencePrice) : undefined,
        needs.position ? position(needs.position.symbol) : undefined,
        needs.openSellQuantity ? openSells(needs.openSellQuantity.symbol) : undefined,
      ]);
      return {
        ...(price ? { referencePrice: price } : {}),
        ...(held ? { position: held } : {}),
        ...(selling ? { openSellQuantity: selling } : {}),
      };
    },
    async order(orderId) {
      const read = await readJson(
        { host: 'trading', path: `v2/orders/${segment(orderId)}`, request: 'GET /v2/orders/{id}' },
        (s) => s === 200 || s === 404,
      );
      if (!read) return FAILED;
      if (read.status === 404) return { ok: false, absent: true };
      const order = parseAlpacaOrder(read.json);
      return isOrderError(order) ? FAILED : ok(order);
    },
  };
}
