// The project's decimal number: money, prices and quantities are exact
// base-10 values, never binary floats.
//
// decimal.js because it is what Prisma's Decimal is (PostgreSQL numeric maps
// to it), so one decimal type runs from the database to the checks; it has
// arbitrary precision and is well kept. Prisma bundles its own copy: a value
// from either copy is accepted by this constructor (decimal.js recognises its
// instances by tag, not by class).
import { Decimal as DecimalJs } from 'decimal.js';

/**
 * 80 significant digits: a product of two 40-digit numbers (and of two
 * 27-digit database values, times 100) is exact. Plain notation up to 60
 * integer digits and 40 decimals, so toString never switches to exponents for
 * any value these rules handle.
 */
export const Decimal = DecimalJs.clone({
  precision: 80,
  rounding: DecimalJs.ROUND_HALF_UP,
  toExpNeg: -40,
  toExpPos: 60,
});
export type Decimal = DecimalJs;

export const ZERO = new Decimal(0);

/** Digits an order's, a quote's or a position's decimal may have on each side of the point. */
const MAX_PARSED_INTEGER_DIGITS = 20;
const MAX_PARSED_FRACTION_DIGITS = 20;

/** Digits a double holds exactly: a number printed with more was not sent as written. */
const EXACT_DOUBLE_DIGITS = 15;

/** Plain decimal text: optional minus, digits with at most one point (".5" and "5." as Alpaca's parser takes them). */
const PLAIN_DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)$/;

/**
 * A JSON number as written in the body (from parseJsonExact). JSON.parse turns
 * "0.30000000000000001" into the double 0.3; the broker reads the text, so the
 * checks must too.
 */
export class JsonNumber {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toJSON(): number {
    return Number(this.text);
  }
}

/**
 * JSON.parse, except that every number comes back as a JsonNumber holding its
 * source text, so a decimal in the body is checked exactly as the broker will
 * read it. Throws SyntaxError on text that is not JSON, as JSON.parse does.
 */
export function parseJsonExact(text: string): unknown {
  // The reviver's third argument (the source text of a primitive) is in Node 21+.
  const reviver = (_key: string, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' && typeof context?.source === 'string' ? new JsonNumber(context.source) : value;
  return JSON.parse(text, reviver as (key: string, value: unknown) => unknown);
}

function fromPlainText(text: string): Decimal | null {
  if (!PLAIN_DECIMAL.test(text)) return null;
  const unsigned = text.startsWith('-') ? text.slice(1) : text;
  const [integer = '', fraction = ''] = unsigned.split('.');
  if (integer.replace(/^0+/, '').length > MAX_PARSED_INTEGER_DIGITS) return null;
  if (fraction.replace(/0+$/, '').length > MAX_PARSED_FRACTION_DIGITS) return null;
  return new Decimal(text);
}

/**
 * A decimal from a broker body: a JSON string ("10", "0.5", "-3"), a JSON
 * number (10, 1.5) or a JsonNumber. Null for anything else: NaN, Infinity,
 * exponents ("1e3"), '', whitespace, more than 20 digits on either side of
 * the point, or a plain number whose printed form has more digits than a
 * double keeps (it was not sent as written: use parseJsonExact).
 */
export function parseDecimal(value: unknown): Decimal | null {
  if (typeof value === 'string') return fromPlainText(value);
  if (value instanceof JsonNumber) return fromPlainText(value.text);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null;
    const text = String(value);
    if (text.replace(/^-|\./g, '').replace(/^0+/, '').replace(/0+$/, '').length > EXACT_DOUBLE_DIGITS) return null;
    return fromPlainText(text);
  }
  return null;
}

/** Plain notation, no exponent, no trailing zeros: "5000", "0.25", "-3". */
export function formatDecimal(d: Decimal): string {
  return d.isZero() ? '0' : d.toFixed();
}

/** Plain notation with thousands separators in the integer part, for messages: "12,345.6". */
export function groupDigits(plain: string): string {
  const negative = plain.startsWith('-');
  const [integer = '', fraction] = (negative ? plain.slice(1) : plain).split('.');
  const grouped = integer.replace(/\B(?=(\d{3})+$)/g, ',');
  return `${negative ? '-' : ''}${grouped}${fraction === undefined ? '' : `.${fraction}`}`;
}

/** The value of a Decimal input (the GraphQL scalar's text): at most 18 digits before the point, 9 after, not negative. */
export const DECIMAL_INPUT_INTEGER_DIGITS = 18;
export const DECIMAL_INPUT_FRACTION_DIGITS = 9;

const DECIMAL_INPUT = /^(-)?(\d+)(?:\.(\d+))?$/;

export type DecimalInputCheck = { ok: true; value: Decimal } | { ok: false; message: string };

/**
 * The Decimal scalar's rule: digits with at most one point ("5000", "0.25"),
 * at most 18 digits before the point and 9 after, not negative. Leading zeros
 * and trailing zeros after the point do not count (the value is what is
 * stored). The message names no field: the caller adds it.
 */
export function checkDecimalInput(text: unknown): DecimalInputCheck {
  if (typeof text !== 'string') {
    return { ok: false, message: 'must be a decimal number sent as a string, like "5000" or "0.25"' };
  }
  const match = DECIMAL_INPUT.exec(text);
  if (!match) {
    return {
      ok: false,
      message: 'must be a decimal number written with digits and at most one point, like "5000" or "0.25"',
    };
  }
  const [, minus, integer = '', fraction = ''] = match;
  const value = new Decimal(text);
  if (minus && !value.isZero()) return { ok: false, message: 'must not be negative' };
  if (integer.replace(/^0+/, '').length > DECIMAL_INPUT_INTEGER_DIGITS) {
    return { ok: false, message: `must have at most ${DECIMAL_INPUT_INTEGER_DIGITS} digits before the point` };
  }
  if (fraction.replace(/0+$/, '').length > DECIMAL_INPUT_FRACTION_DIGITS) {
    return { ok: false, message: `must have at most ${DECIMAL_INPUT_FRACTION_DIGITS} digits after the point` };
  }
  return { ok: true, value: value.abs() };
}

/** Whether a Decimal fits the scalar's bounds (for values that arrive already as Decimal). */
export function decimalInputFits(value: Decimal): DecimalInputCheck {
  if (!value.isFinite()) return { ok: false, message: 'must be a finite number' };
  return checkDecimalInput(value.isZero() ? '0' : value.toFixed());
}

/** A value as an integer and a power of ten: 12.34 → [1234n, 2]. */
function scaled(d: Decimal): [bigint, number] {
  const text = d.toFixed();
  const point = text.indexOf('.');
  return point === -1 ? [BigInt(text), 0] : [BigInt(text.replace('.', '')), text.length - point - 1];
}

/**
 * a / b rounded up at `places` decimals, never below the exact quotient, for
 * positive a and b. Hand-written on BigInt: decimal.js rounds every division
 * (and a check of it by multiplication) at its precision, and a check must
 * never be more lenient than the exact value.
 */
export function divideRoundingUp(a: Decimal, b: Decimal, places: number): Decimal {
  const [x, xPlaces] = scaled(a);
  const [y, yPlaces] = scaled(b);
  // a / b = (x / 10^xPlaces) / (y / 10^yPlaces); in units of 10^-places:
  const numerator = x * 10n ** BigInt(yPlaces + places);
  const denominator = y * 10n ** BigInt(xPlaces);
  const units = (numerator + denominator - 1n) / denominator;
  return new Decimal(`${units}e-${places}`);
}
