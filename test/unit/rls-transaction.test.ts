import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { unscopedDb } from '../../src/graphql/context.ts';
import { needsDatabase } from '../../src/graphql/rls-transaction.ts';

describe('needsDatabase', () => {
  it('skips the transaction only for operations that select nothing but viewer and meta fields', () => {
    expect(needsDatabase(parse('{ viewer { id } __typename }'))).toBe(false);
    expect(needsDatabase(parse('{ __schema { types { name } } }'))).toBe(false);
    expect(needsDatabase(parse('{ viewer { id } accounts { id } }'))).toBe(true);
    expect(needsDatabase(parse('mutation { getOrCreateAccount { created } }'))).toBe(true);
  });

  it('follows fragments and picks the named operation', () => {
    expect(needsDatabase(parse('query { ...F } fragment F on Query { accounts { id } }'))).toBe(true);
    expect(needsDatabase(parse('query { ... on Query { viewer { id } } }'))).toBe(false);
    const doc = parse('query A { viewer { id } } query B { accounts { id } }');
    expect(needsDatabase(doc, 'A')).toBe(false);
    expect(needsDatabase(doc, 'B')).toBe(true);
  });
});

describe('unscopedDb', () => {
  it('throws on any use, so no query can run outside the RLS transaction', () => {
    expect(() => unscopedDb.userAccount).toThrow(/outside the operation's RLS transaction/);
  });
});
