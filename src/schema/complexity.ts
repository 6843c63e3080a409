// How much work a field may cause, for @pothos/plugin-complexity: every
// selected field costs 1, and the selection under a list counts as many times
// as the list can be long. That length is never the rows that happen to
// exist: a connection counts the page it asks for (`first`), any other list
// its cap. So a query's complexity bounds the values it can return, before
// anything runs, and nesting alone does not make a query costly; asking for
// more rows does. The limit is enforced in src/graphql/complexity.ts.
//
// A list of scalars or enums (changedFields, EngineGuardrails.symbols) has no
// selection to multiply: its field counts its longest length instead
// (`complexity: MAX`).
//
// Every list of objects declares its length here or at its field:
//   someList: t.field({ type: [Thing], complexity: cappedList(MAX_THINGS), ... })
// A list that does not gets UNCAPPED_LIST_MULTIPLIER, which makes any query
// through it refused, and test/unit/complexity.test.ts fails naming it.
import type { FieldComplexityValue } from '@pothos/plugin-complexity';

/** The default multiplier of a list that declares no cap: deliberately prohibitive. */
export const UNCAPPED_LIST_MULTIPLIER = 100_000;

/** A list of at most `cap` items: its selection counts `cap` times. */
export const cappedList = (cap: number): FieldComplexityValue => ({ field: 1, multiplier: cap });

/**
 * A Relay connection: its selection (edges) counts once per item of the page
 * asked for. Out-of-range sizes are refused by the resolver (BAD_USER_INPUT on
 * `first`) before any work, so they count as the nearest valid size.
 */
export const connectionPage =
  (defaultSize: number, maxSize: number) =>
  (args: { first?: number | null }): FieldComplexityValue => ({
    field: 1,
    multiplier: Math.min(Math.max(args.first ?? defaultSize, 1), maxSize),
  });

/**
 * For the connection types' own fields (builder options): `edges` adds
 * nothing beyond what the page multiplier counts, and `pageInfo` is computed
 * from the page already read, so neither counts again per item.
 */
export const EDGES_COMPLEXITY: FieldComplexityValue = { field: 0, multiplier: 1 };
export const PAGE_INFO_COMPLEXITY: FieldComplexityValue = { field: 0, multiplier: 0 };
