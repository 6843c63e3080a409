// Guardrails on an engine grant: the limits a user sets on what a trading
// engine may do with the keys, their defaults, and the validation of a change.
// Pure: the checks of orders against them are in guardrail-checks.ts, the
// reading of Alpaca's bodies in alpaca-orders.ts.
import { checkDecimalInput, Decimal, decimalInputFits, formatDecimal } from './decimal.ts';
import { InvalidInputError } from './errors.ts';

export const TRADING_STATES = ['ACTIVE', 'REDUCING', 'HALTED'] as const;
export type TradingState = (typeof TRADING_STATES)[number];

export const ASSET_CLASSES = ['US_EQUITY', 'CRYPTO', 'US_OPTION'] as const;
export type AssetClass = (typeof ASSET_CLASSES)[number];

export const ORDER_TYPES = ['MARKET', 'LIMIT', 'STOP', 'STOP_LIMIT', 'TRAILING_STOP'] as const;
export type OrderType = (typeof ORDER_TYPES)[number];

export interface Guardrails {
  tradingState: TradingState;
  /** null: any symbol; else upper case, sorted, without duplicates. */
  symbols: string[] | null;
  /** Never empty; in ASSET_CLASSES order. */
  assetClasses: AssetClass[];
  /** Never empty; in ORDER_TYPES order. */
  orderTypes: OrderType[];
  allowShortSelling: boolean;
  allowExtendedHours: boolean;
  allowAccountWideActions: boolean;
  /** USD per order. Every cap: null means no cap; a value equal to the cap passes. */
  maxOrderNotional: Decimal | null;
  /** Shares, coins or contracts per order. */
  maxOrderQuantity: Decimal | null;
  /** USD per trading day, over the orders accepted through the grant. */
  maxDailyNotional: Decimal | null;
  /** New orders plus replacements accepted per trading day. */
  maxDailyOrders: number | null;
  /** Limit and stop prices within this many percent of the reference price. */
  priceCollarPercent: Decimal | null;
}

/** The fields, in the order the API lists them (and changedFields names them). */
export const GUARDRAIL_FIELDS = [
  'tradingState',
  'symbols',
  'assetClasses',
  'orderTypes',
  'allowShortSelling',
  'allowExtendedHours',
  'allowAccountWideActions',
  'maxOrderNotional',
  'maxOrderQuantity',
  'maxDailyNotional',
  'maxDailyOrders',
  'priceCollarPercent',
] as const satisfies readonly (keyof Guardrails)[];
export type GuardrailField = (typeof GUARDRAIL_FIELDS)[number];

export const DEFAULT_GUARDRAILS: Readonly<Guardrails> = Object.freeze<Guardrails>({
  tradingState: 'ACTIVE',
  symbols: null,
  assetClasses: ['US_EQUITY'],
  orderTypes: [...ORDER_TYPES],
  allowShortSelling: false,
  allowExtendedHours: false,
  allowAccountWideActions: false,
  maxOrderNotional: null,
  maxOrderQuantity: null,
  maxDailyNotional: null,
  maxDailyOrders: null,
  priceCollarPercent: null,
});

/** A decimal input arrives as the GraphQL scalar's text or already as a Decimal (Prisma's included). */
export type DecimalInput = string | Decimal;

/**
 * A change: a field left out (undefined) keeps its value; null clears a cap
 * or `symbols`. The other fields cannot be cleared: null for them is refused.
 */
export interface GuardrailsInput {
  tradingState?: TradingState | null;
  symbols?: readonly string[] | null;
  assetClasses?: readonly AssetClass[] | null;
  orderTypes?: readonly OrderType[] | null;
  allowShortSelling?: boolean | null;
  allowExtendedHours?: boolean | null;
  allowAccountWideActions?: boolean | null;
  maxOrderNotional?: DecimalInput | null;
  maxOrderQuantity?: DecimalInput | null;
  maxDailyNotional?: DecimalInput | null;
  maxDailyOrders?: number | null;
  priceCollarPercent?: DecimalInput | null;
}

export const MAX_SYMBOLS = 500;
export const MAX_DAILY_ORDERS = 1_000_000;
export const MAX_PRICE_COLLAR_PERCENT = 1000;

/** A ticker (BRK.B), a crypto pair (BTC/USD) or an option root (AAPL): 1-15 of letters, digits, '.', '/'. */
const SYMBOL = /^[A-Za-z0-9./]{1,15}$/;

/** The symbol as stored (upper case), or null when it is not a ticker, a crypto pair or an option root. */
export function normaliseSymbol(symbol: string): string | null {
  if (!SYMBOL.test(symbol)) return null;
  const slash = symbol.indexOf('/');
  if (slash !== -1 && (slash === 0 || slash === symbol.length - 1 || symbol.indexOf('/', slash + 1) !== -1)) {
    return null;
  }
  return symbol.toUpperCase();
}

function cannotClear(field: GuardrailField): never {
  throw new InvalidInputError(field, `${field} cannot be cleared: leave it out to keep its value.`);
}

function oneOf<T extends string>(field: GuardrailField, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidInputError(field, `${field} must be one of ${allowed.join(', ')}.`);
  }
  return value as T;
}

/** The listed values de-duplicated, in the enum's order; never empty. */
function enumList<T extends string>(field: GuardrailField, value: unknown, allowed: readonly T[]): T[] {
  if (!Array.isArray(value)) throw new InvalidInputError(field, `${field} must be a list.`);
  if (value.length === 0)
    throw new InvalidInputError(field, `${field} must not be empty: an empty list would allow nothing.`);
  const chosen = new Set(value.map((v) => oneOf(field, v, allowed)));
  return allowed.filter((v) => chosen.has(v));
}

function symbolList(value: unknown): string[] {
  if (!Array.isArray(value)) throw new InvalidInputError('symbols', 'symbols must be a list, or null for any symbol.');
  if (value.length === 0) {
    throw new InvalidInputError(
      'symbols',
      'symbols must not be empty: give at least one symbol, or null for any symbol.',
    );
  }
  const symbols = new Set<string>();
  for (const entry of value) {
    const symbol = typeof entry === 'string' ? normaliseSymbol(entry) : null;
    if (symbol === null) {
      throw new InvalidInputError(
        'symbols',
        `symbols: ${JSON.stringify(String(entry)).slice(0, 40)} is not a ticker, a crypto pair or an option root (1-15 letters, digits, "." or one "/" between two parts).`,
      );
    }
    symbols.add(symbol);
  }
  if (symbols.size > MAX_SYMBOLS) {
    throw new InvalidInputError('symbols', `symbols may hold at most ${MAX_SYMBOLS} symbols (got ${symbols.size}).`);
  }
  return [...symbols].sort();
}

function flag(field: GuardrailField, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidInputError(field, `${field} must be true or false.`);
  return value;
}

/** A positive decimal within the Decimal scalar's bounds (and, for a percentage, at most `max`). */
function positiveDecimal(field: GuardrailField, value: unknown, max?: number): Decimal {
  let checked: ReturnType<typeof checkDecimalInput>;
  if (typeof value === 'string') checked = checkDecimalInput(value);
  else if (Decimal.isDecimal(value)) checked = decimalInputFits(new Decimal(value));
  else checked = { ok: false, message: 'must be a decimal number sent as a string, like "5000" or "0.25"' };
  if (!checked.ok) throw new InvalidInputError(field, `${field} ${checked.message}.`);
  if (checked.value.isZero() || checked.value.isNegative()) {
    throw new InvalidInputError(field, `${field} must be greater than 0 (null removes the cap).`);
  }
  if (max !== undefined && checked.value.gt(max)) {
    throw new InvalidInputError(field, `${field} must be at most ${max}.`);
  }
  return checked.value;
}

function dailyOrders(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_DAILY_ORDERS) {
    throw new InvalidInputError(
      'maxDailyOrders',
      `maxDailyOrders must be a whole number from 1 to ${MAX_DAILY_ORDERS} (null removes the cap).`,
    );
  }
  return value;
}

function sameValue(field: GuardrailField, a: Guardrails, b: Guardrails): boolean {
  const x = a[field];
  const y = b[field];
  if (x === null || y === null) return x === y;
  if (Array.isArray(x) && Array.isArray(y)) {
    // Stored lists are normalised (sorted or in enum order, no duplicates): equal as sets is equal as lists.
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  if (Decimal.isDecimal(x) && Decimal.isDecimal(y)) return x.eq(y);
  return x === y;
}

/**
 * The guardrails after `input` is applied to `current`, and the fields whose
 * value changed (in GUARDRAIL_FIELDS order; empty when nothing did). Throws
 * InvalidInputError naming the first invalid field (its plain name, e.g.
 * "maxOrderNotional": the caller may prefix it with the input's path).
 */
export function applyGuardrailsInput(
  current: Readonly<Guardrails>,
  input: GuardrailsInput,
): { guardrails: Guardrails; changed: GuardrailField[] } {
  const next: Guardrails = { ...current, symbols: current.symbols && [...current.symbols] };
  next.assetClasses = [...current.assetClasses];
  next.orderTypes = [...current.orderTypes];
  const given = <F extends GuardrailField>(field: F) => input[field] !== undefined;

  if (given('tradingState')) {
    if (input.tradingState === null) cannotClear('tradingState');
    next.tradingState = oneOf('tradingState', input.tradingState, TRADING_STATES);
  }
  if (given('symbols')) next.symbols = input.symbols === null ? null : symbolList(input.symbols);
  if (given('assetClasses')) {
    if (input.assetClasses === null) cannotClear('assetClasses');
    next.assetClasses = enumList('assetClasses', input.assetClasses, ASSET_CLASSES);
  }
  if (given('orderTypes')) {
    if (input.orderTypes === null) cannotClear('orderTypes');
    next.orderTypes = enumList('orderTypes', input.orderTypes, ORDER_TYPES);
  }
  for (const field of ['allowShortSelling', 'allowExtendedHours', 'allowAccountWideActions'] as const) {
    if (!given(field)) continue;
    if (input[field] === null) cannotClear(field);
    next[field] = flag(field, input[field]);
  }
  for (const field of ['maxOrderNotional', 'maxOrderQuantity', 'maxDailyNotional'] as const) {
    if (given(field)) next[field] = input[field] === null ? null : positiveDecimal(field, input[field]);
  }
  if (given('maxDailyOrders'))
    next.maxDailyOrders = input.maxDailyOrders === null ? null : dailyOrders(input.maxDailyOrders);
  if (given('priceCollarPercent')) {
    next.priceCollarPercent =
      input.priceCollarPercent === null
        ? null
        : positiveDecimal('priceCollarPercent', input.priceCollarPercent, MAX_PRICE_COLLAR_PERCENT);
  }

  const changed = GUARDRAIL_FIELDS.filter((field) => !sameValue(field, current, next));
  return { guardrails: next, changed };
}

/** Whether these are the defaults (a grant made with them leaves no GUARDRAILS_CHANGED event). */
export function isDefaultGuardrails(guardrails: Readonly<Guardrails>): boolean {
  return GUARDRAIL_FIELDS.every((field) => sameValue(field, DEFAULT_GUARDRAILS, guardrails));
}

/** The JSON form: the same fields, in order, decimals as plain strings. */
export interface GuardrailsJson {
  tradingState: TradingState;
  symbols: string[] | null;
  assetClasses: AssetClass[];
  orderTypes: OrderType[];
  allowShortSelling: boolean;
  allowExtendedHours: boolean;
  allowAccountWideActions: boolean;
  maxOrderNotional: string | null;
  maxOrderQuantity: string | null;
  maxDailyNotional: string | null;
  maxDailyOrders: number | null;
  priceCollarPercent: string | null;
}

/** The JSON form (the engine API's `guardrails`, stored copies). */
export function guardrailsToJson(guardrails: Readonly<Guardrails>): GuardrailsJson {
  const cap = (d: Decimal | null) => (d === null ? null : formatDecimal(d));
  return {
    tradingState: guardrails.tradingState,
    symbols: guardrails.symbols && [...guardrails.symbols],
    assetClasses: [...guardrails.assetClasses],
    orderTypes: [...guardrails.orderTypes],
    allowShortSelling: guardrails.allowShortSelling,
    allowExtendedHours: guardrails.allowExtendedHours,
    allowAccountWideActions: guardrails.allowAccountWideActions,
    maxOrderNotional: cap(guardrails.maxOrderNotional),
    maxOrderQuantity: cap(guardrails.maxOrderQuantity),
    maxDailyNotional: cap(guardrails.maxDailyNotional),
    maxDailyOrders: guardrails.maxDailyOrders,
    priceCollarPercent: cap(guardrails.priceCollarPercent),
  };
}

/** The model from its JSON form (as the database answers a grant's limits); the inverse of guardrailsToJson. */
export function guardrailsFromJson(json: GuardrailsJson): Guardrails {
  const cap = (text: string | null) => (text === null ? null : new Decimal(text));
  return {
    tradingState: json.tradingState,
    symbols: json.symbols && [...json.symbols],
    assetClasses: [...json.assetClasses],
    orderTypes: [...json.orderTypes],
    allowShortSelling: json.allowShortSelling,
    allowExtendedHours: json.allowExtendedHours,
    allowAccountWideActions: json.allowAccountWideActions,
    maxOrderNotional: cap(json.maxOrderNotional),
    maxOrderQuantity: cap(json.maxOrderQuantity),
    maxDailyNotional: cap(json.maxDailyNotional),
    maxDailyOrders: json.maxDailyOrders,
    priceCollarPercent: cap(json.priceCollarPercent),
  };
}

const NEW_YORK_DAY = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/New_York',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

/**
 * The trading day an instant belongs to: its calendar day in
 * America/New_York, "YYYY-MM-DD" (daylight saving time included, from the
 * runtime's time zone data).
 */
export function tradingDay(instant: Date): string {
  const parts = Object.fromEntries(NEW_YORK_DAY.formatToParts(instant).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}
