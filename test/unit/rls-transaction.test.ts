import { parse, specifiedRules, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { dbOutsideTransaction } from '../../src/graphql/context.ts';
import { needsDatabase, runsOwnTransaction, soleOwnTransactionField } from '../../src/graphql/rls-transaction.ts';
import { schema } from '../../src/schema/index.ts';

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

describe('dbOutsideTransaction', () => {
  it('throws on any use, so no query can run outside the RLS transaction', () => {
    expect(() => dbOutsideTransaction.userAccount).toThrow(/outside the operation's RLS transaction/);
  });
});

describe('fields with their own transaction (verifyCredential)', () => {
  const errors = (source: string) =>
    validate(schema, parse(source), [...specifiedRules, soleOwnTransactionField]).map((e) => e.extensions?.code);
  const id = '"00000000-0000-4000-8000-000000000000"';

  it('are recognised through aliases and fragments, and only for the operation to run', () => {
    expect(runsOwnTransaction(schema, parse(`mutation { v: verifyCredential(id: ${id}) { id } }`))).toBe(true);
    expect(
      runsOwnTransaction(
        schema,
        parse(`mutation { ...F } fragment F on Mutation { verifyCredential(id: ${id}) { id } }`),
      ),
    ).toBe(true);
    expect(runsOwnTransaction(schema, parse('mutation { getOrCreateAccount { created } }'))).toBe(false);
    const doc = parse(
      `mutation A { verifyCredential(id: ${id}) { id } } mutation B { getOrCreateAccount { created } }`,
    );
    expect(runsOwnTransaction(schema, doc, 'A')).toBe(true);
    expect(runsOwnTransaction(schema, doc, 'B')).toBe(false);
  });

  it('must be alone in their operation (besides __typename)', () => {
    expect(errors(`mutation { verifyCredential(id: ${id}) { id } }`)).toEqual([]);
    expect(errors(`mutation { __typename verifyCredential(id: ${id}) { id } }`)).toEqual([]);
    expect(errors(`mutation { a: verifyCredential(id: ${id}) { id } b: verifyCredential(id: ${id}) { id } }`)).toEqual([
      'OPERATION_NOT_SUPPORTED',
    ]);
    expect(
      errors(`mutation { getOrCreateAccount { created } ... on Mutation { verifyCredential(id: ${id}) { id } } }`),
    ).toEqual(['OPERATION_NOT_SUPPORTED']);
    expect(errors('mutation { getOrCreateAccount { created } deleteCredential(id: ' + id + ') }')).toEqual([]);
  });
});
