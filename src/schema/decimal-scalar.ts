// The Decimal scalar: money, prices and quantities as exact base-10 numbers,
// sent and returned as JSON strings ("5000", "0.25").
//
// Hand-written: graphql-scalars has no decimal-string scalar (its number
// scalars are floats), and the bounds are this API's own (18 digits before
// the point, 9 after, never negative), those of numeric(27,9) in the database.
//
// Input is a string only, in variables and in the document alike. A JSON
// number is refused, integers included: JSON.parse turns 5000.0 into 5000 and
// any integer past 2^53 into a neighbour, so a number may no longer be what
// the client meant, and binary floats never touch money here. Values come in
// as the project's Decimal (src/domain/decimal.ts).
import { type ASTNode, GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import { checkDecimalInput, Decimal, formatDecimal } from '../domain/decimal.ts';

/**
 * A GraphQLError: for a variable, graphql-js prefixes the variable and the
 * path (input.field), from which extensions.field is made
 * (src/graphql/errors.ts); for a literal, it is the validation error as it
 * stands, located at the value (as graphql-scalars' errors are).
 */
function parseDecimalInput(value: unknown, node?: ASTNode): Decimal {
  const checked = checkDecimalInput(value);
  if (!checked.ok) throw new GraphQLError(`A Decimal ${checked.message}.`, node ? { nodes: node } : {});
  return checked.value;
}

/** Plain text of a decimal from anywhere in the app: ours, Prisma's copy of decimal.js, or plain decimal text. */
function serializeDecimal(value: unknown): string {
  if (Decimal.isDecimal(value)) return formatDecimal(new Decimal(value));
  if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value)) return formatDecimal(new Decimal(value));
  throw new GraphQLError('Decimal cannot represent this value.');
}

export const DecimalScalar = new GraphQLScalarType<Decimal, string>({
  name: 'Decimal',
  description:
    'A base-10 number sent and returned as a JSON string, such as "5000" or "0.25": at most 18 digits before ' +
    'the point and 9 after, never negative. Send a string: a JSON number is refused, as binary floats would ' +
    'round money.',
  serialize: serializeDecimal,
  parseValue: parseDecimalInput,
  parseLiteral(ast) {
    // Not a string (5000, 0.25): the same refusal as a number in the variables.
    return parseDecimalInput(ast.kind === Kind.STRING ? ast.value : undefined, ast);
  },
});
