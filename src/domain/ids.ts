// Identifiers as the API accepts them.

/** A UUID in its text form, in either case (PostgreSQL's uuid type reads both). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `value` is a UUID: checked before it reaches a `::uuid` cast, which would fail the statement. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/**
 * The one form of a UUID that keys everything decided about it (a rate limit,
 * an event, a log line): lower case. Null when `value` is not a UUID.
 */
export function canonicalUuid(value: string): string | null {
  return UUID.test(value) ? value.toLowerCase() : null;
}
