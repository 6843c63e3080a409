// The guardrail check of one engine request that could create or change
// exposure: a new order (POST v2/orders), a replacement (PATCH
// v2/orders/{id}), cancelling every order (DELETE v2/orders) or closing every
// position (DELETE v2/positions). The rules are src/domain/guardrail-checks.ts;
// this reads the body and, through a FactReader, only the facts the grant's
// rules ask for. Cancelling one order and closing one position are never
// checked (they reduce risk), nor are reads.
//
// The body is read as sent and never changed: the checks parse a copy (with
// every number kept exact, as Alpaca will read it), and the bytes the engine
// sent are what is forwarded.
import { isOrderError, overlayReplacement, type ParsedOrder, parseOrder } from '../domain/alpaca-orders.ts';
import { parseJsonExact, ZERO } from '../domain/decimal.ts';
import {
  type AccountWideAction,
  checkAccountWideAction,
  checkOrder,
  type Decision,
  estimateNeeds,
  type GuardrailRefusal,
  type OrderFacts,
  type OrderSummary,
  type OrderToCheck,
  planOrderCheck,
  replacedOrderUnavailable,
  type Usage,
} from '../domain/guardrail-checks.ts';
import type { Guardrails } from '../domain/guardrails.ts';
import type { OrderCount } from './admission.ts';
import type { FactReader } from './market-facts.ts';

const GUARDED = new Set(['POST /v2/orders', 'PATCH /v2/orders/{id}', 'DELETE /v2/orders', 'DELETE /v2/positions']);

/** Whether a request ("METHOD /template") goes through the guardrail checks. */
export function isGuarded(request: string): boolean {
  return GUARDED.has(request);
}

export type GuardOutcome =
  /** A body the checks cannot read: answered 400 naming the field, nothing forwarded, nothing recorded. */
  | { kind: 'unreadable'; field: string; message: string }
  /** A replacement of an order Alpaca does not have: nothing to check, nothing forwarded. */
  | { kind: 'no-such-order' }
  /** Allowed: what it counts toward the daily caps, and the summary its event carries. */
  | { kind: 'allowed'; count: OrderCount; summary: OrderSummary | null; decision: Decision | null }
  /** Refused by a rule (403) or for want of a fact (503). */
  | { kind: 'refused'; refusal: Exclude<Decision, { allowed: true }> | GuardrailRefusal };

export interface GuardInput {
  /** "METHOD /template" of a guarded route. */
  request: string;
  /** The order id of a replacement (its path parameter). */
  orderId?: string;
  body: Buffer | null;
  guardrails: Guardrails;
  usage: Usage;
  reader: FactReader;
  /** A dry run: an allowed order's estimated notional is read even when no rule needed it. */
  estimate?: boolean;
}

function readOrderBody(body: Buffer | null): unknown | { unreadable: true } {
  try {
    return parseJsonExact(body ? body.toString('utf8') : '');
  } catch {
    return { unreadable: true };
  }
}

const isUnreadable = (value: unknown): value is { unreadable: true } =>
  typeof value === 'object' && value !== null && 'unreadable' in value;

/**
 * Plans, reads what the plan asks for (the asset first: it decides where the
 * rest is read), and decides. With `estimate` (a dry run), an allowed order
 * whose notional no rule needed has it read as well.
 */
async function decide(check: OrderToCheck, usage: Usage, reader: FactReader, estimate: boolean): Promise<Decision> {
  let plan = planOrderCheck(check);
  const facts: OrderFacts = {};
  let decision = plan.decided;
  if (!decision && plan.needs?.asset) {
    facts.asset = await reader.asset(plan.needs.asset.symbol);
    plan = planOrderCheck({ ...check, facts: { asset: facts.asset } });
    decision = plan.decided;
  }
  if (!decision) {
    Object.assign(facts, await reader.facts(plan.needs ?? {}));
    decision = checkOrder({ ...check, usage, facts });
  }
  if (!estimate || !decision.allowed || decision.estimatedNotional !== null) return decision;
  // At most the asset, then the price.
  for (let round = 0, needs = estimateNeeds(check, facts); needs && round < 2; round++) {
    if (needs.asset) facts.asset = await reader.asset(needs.asset.symbol);
    else Object.assign(facts, await reader.facts(needs));
    needs = estimateNeeds(check, facts);
  }
  const estimated = checkOrder({ ...check, usage, facts });
  return estimated.allowed ? estimated : decision;
}

function outcomeOf(decision: Decision): GuardOutcome {
  if (!decision.allowed) return { kind: 'refused', refusal: decision };
  return {
    kind: 'allowed',
    count: { orders: 1, notional: decision.countedNotional },
    summary: decision.summary,
    decision,
  };
}

export async function guard(input: GuardInput): Promise<GuardOutcome> {
  const { request, guardrails, usage, reader } = input;
  if (request === 'DELETE /v2/orders' || request === 'DELETE /v2/positions') {
    const checked = checkAccountWideAction(guardrails, request as AccountWideAction);
    return checked.allowed
      ? { kind: 'allowed', count: { orders: 0, notional: ZERO }, summary: null, decision: null }
      : { kind: 'refused', refusal: checked };
  }
  const json = readOrderBody(input.body);
  if (isUnreadable(json)) return { kind: 'unreadable', field: 'body', message: 'The body is not JSON.' };
  if (request === 'POST /v2/orders') {
    const order = parseOrder(json);
    if (isOrderError(order)) return { kind: 'unreadable', field: order.field, message: order.error };
    return outcomeOf(await decide({ guardrails, order, kind: 'new' }, usage, reader, input.estimate === true));
  }
  // PATCH /v2/orders/{id}: the order as Alpaca has it, the changes laid over it.
  const original = await reader.order(input.orderId ?? '');
  if (!original.ok) {
    return 'absent' in original ? { kind: 'no-such-order' } : { kind: 'refused', refusal: replacedOrderUnavailable() };
  }
  const replacement: ParsedOrder | { error: string; field: string } = overlayReplacement(original.value, json);
  if (isOrderError(replacement)) {
    return { kind: 'unreadable', field: replacement.field, message: replacement.error };
  }
  return outcomeOf(
    await decide({ guardrails, order: replacement, kind: 'replace', original: original.value }, usage, reader, false),
  );
}
