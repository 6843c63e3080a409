// The guardrails of an engine grant in GraphQL (docs/engines.md): what an
// engine may do with a credential's keys, today's usage against the daily
// caps, and the input that changes them. The rules and their validation are
// src/domain/guardrails.ts; the fields on EngineGrant and the mutations are
// in ./engine-grant.ts.
//
// The lists here are columns of the grant's row (at most MAX_SYMBOLS symbols,
// each enum once), read with it: no resolver or statement per element, so
// each counts as one field in a query's complexity (./complexity.ts).
import type { Decimal } from '../domain/decimal.ts';
import {
  ASSET_CLASSES,
  type Guardrails,
  type GuardrailsInput,
  MAX_DAILY_ORDERS,
  MAX_PRICE_COLLAR_PERCENT,
  MAX_SYMBOLS,
  ORDER_TYPES,
  type TRADING_STATES,
} from '../domain/guardrails.ts';
import { builder } from './builder.ts';

export const EngineTradingStateRef = builder.enumType('EngineTradingState', {
  description: 'What a grant lets an engine do at all.',
  values: {
    ACTIVE: { description: "Everything the grant's scopes and limits allow." },
    REDUCING: {
      description:
        'Only what shrinks a position: sells up to the long position held, buys up to the short position held, ' +
        'cancels, closing a position.',
    },
    HALTED: { description: 'No new or replaced order: cancels and closing a position only.' },
  } satisfies Record<(typeof TRADING_STATES)[number], { description: string }>,
});

export const EngineAssetClassRef = builder.enumType('EngineAssetClass', { values: ASSET_CLASSES });

export const EngineOrderTypeRef = builder.enumType('EngineOrderType', { values: ORDER_TYPES });

const CAP = 'null: no cap; an amount equal to the cap passes.';

export const EngineGuardrailsRef = builder.objectRef<Guardrails>('EngineGuardrails').implement({
  description:
    'Limits on what the engine may do with the keys, checked by the server on every request that could create ' +
    'or change exposure, before anything reaches the broker.',
  fields: (t) => ({
    tradingState: t.expose('tradingState', { type: EngineTradingStateRef, description: 'Default ACTIVE.' }),
    symbols: t.exposeStringList('symbols', {
      nullable: true,
      description:
        'null: any symbol; else only these (upper case; a crypto pair with its slash, an option by its root). Default null.',
    }),
    assetClasses: t.expose('assetClasses', {
      type: [EngineAssetClassRef],
      description: 'Default [US_EQUITY].',
    }),
    orderTypes: t.expose('orderTypes', {
      type: [EngineOrderTypeRef],
      description: 'Default: all five.',
    }),
    allowShortSelling: t.exposeBoolean('allowShortSelling', { description: 'Default false.' }),
    allowExtendedHours: t.exposeBoolean('allowExtendedHours', { description: 'Default false.' }),
    allowAccountWideActions: t.exposeBoolean('allowAccountWideActions', {
      description:
        'Cancelling all orders and closing all positions of the account (DELETE v2/orders, v2/positions). Default false.',
    }),
    maxOrderNotional: t.expose('maxOrderNotional', {
      type: 'Decimal',
      nullable: true,
      description: `USD per order; ${CAP}`,
    }),
    maxOrderQuantity: t.expose('maxOrderQuantity', {
      type: 'Decimal',
      nullable: true,
      description: `Shares, coins or contracts per order; ${CAP}`,
    }),
    maxDailyNotional: t.expose('maxDailyNotional', {
      type: 'Decimal',
      nullable: true,
      description: `USD per trading day, over the orders accepted through the grant; ${CAP}`,
    }),
    maxDailyOrders: t.exposeInt('maxDailyOrders', {
      nullable: true,
      description: `New orders plus replacements accepted per trading day; ${CAP}`,
    }),
    priceCollarPercent: t.expose('priceCollarPercent', {
      type: 'Decimal',
      nullable: true,
      description: `Limit and stop prices within this many percent of the market price; ${CAP}`,
    }),
  }),
});

export interface GrantUsage {
  /** "YYYY-MM-DD" */
  tradingDay: string;
  orders: number;
  notional: Decimal | string;
}

export const EngineGrantUsageRef = builder.objectRef<GrantUsage>('EngineGrantUsage').implement({
  description: 'What a grant has used of its daily caps today.',
  fields: (t) => ({
    tradingDay: t.expose('tradingDay', {
      type: 'Date',
      description: 'The calendar day in America/New_York, where US markets keep their hours.',
    }),
    orders: t.exposeInt('orders', { description: 'New orders and replacements counted today.' }),
    notional: t.expose('notional', { type: 'Decimal', description: 'USD counted today.' }),
  }),
});

export const EngineGuardrailsInputRef = builder.inputRef<GuardrailsInput>('EngineGuardrailsInput').implement({
  description:
    'A change of guardrails: a field left out keeps its value; null clears a cap or symbols. Invalid values are ' +
    'BAD_USER_INPUT naming the field, and nothing is changed.',
  fields: (t) => ({
    tradingState: t.field({ type: EngineTradingStateRef }),
    symbols: t.stringList({
      description: `1 to ${MAX_SYMBOLS} tickers, crypto pairs or option roots (1-15 letters, digits, "." or "/"), stored upper case; null: any symbol.`,
    }),
    assetClasses: t.field({ type: [EngineAssetClassRef], description: 'At least one.' }),
    orderTypes: t.field({ type: [EngineOrderTypeRef], description: 'At least one.' }),
    allowShortSelling: t.boolean(),
    allowExtendedHours: t.boolean(),
    allowAccountWideActions: t.boolean(),
    maxOrderNotional: t.field({ type: 'Decimal', description: 'Greater than 0; null: no cap.' }),
    maxOrderQuantity: t.field({ type: 'Decimal', description: 'Greater than 0; null: no cap.' }),
    maxDailyNotional: t.field({ type: 'Decimal', description: 'Greater than 0; null: no cap.' }),
    maxDailyOrders: t.int({ description: `1 to ${MAX_DAILY_ORDERS.toLocaleString('en-US')}; null: no cap.` }),
    priceCollarPercent: t.field({
      type: 'Decimal',
      description: `Greater than 0, at most ${MAX_PRICE_COLLAR_PERCENT}; null: no cap.`,
    }),
  }),
});
