import { buildSchema, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { withoutSuggestions } from '../../src/graphql/errors.ts';

const schema = buildSchema(`
  enum Scope { READ TRADE }
  input Grant { scopes: [Scope!]!  nickname: String  nickName2: String  nicknames: String }
  type Query { grant(input: Grant!): Boolean  accounts: Boolean  account: Boolean  accountz2: Boolean }
`);

const messages = (query: string) => validate(schema, parse(query)).map((e) => withoutSuggestions(e).message);

describe('withoutSuggestions', () => {
  it('hides graphql-js suggestions of every form: fields, several at once, enum values', () => {
    const hidden = [...messages('{ accountz }'), ...messages('{ grant(input: { scopes: [REED], nicknam: "x" }) }')];
    expect(hidden.length).toBeGreaterThanOrEqual(3);
    for (const message of hidden) expect(message).not.toMatch(/Did you mean|"(accounts|account|READ|nickname)"/);
    expect(hidden.join('\n')).toMatch(/\[Suggestion hidden\]/);
  });

  it('leaves other messages as they are', () => {
    const [error] = validate(schema, parse('{ nothingLikeIt }'));
    expect(error && withoutSuggestions(error)).toBe(error);
  });
});
