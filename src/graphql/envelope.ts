// The request envelope (query, variables, operationName, extensions and the
// trusted-document id) checked once, before any plugin reads it.
//
// Yoga checks the types of query, variables and extensions, but in its own
// onParams hook, which runs after every plugin of ours (secret scrubbing reads
// the query text, trusted documents the extensions): a query that is a number
// reached them as one. This plugin runs first and refuses what yoga would
// refuse, in yoga's words, plus what yoga lets through (an operationName or a
// documentId that is not a string). Yoga does not export its check, hence the
// copy; its own check still runs after, for the rest (a missing query,
// unexpected parameters).
//
// GET query strings and form bodies carry variables and extensions as JSON
// text, which yoga's parser reads with a bare JSON.parse: a malformed one was
// an unexpected error (500). Here they are read with a 400 naming the
// parameter.
import { createGraphQLError, type GraphQLParams, type Plugin } from 'graphql-yoga';

const badRequest = (message: string) =>
  createGraphQLError(message, { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } });

/** typeof, with null and arrays told apart (yoga's wording). */
const typeName = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value);

const STRINGS = ['query', 'operationName', 'documentId'] as const;
const OBJECTS = ['variables', 'extensions'] as const;

/** Throws a 400 naming the first parameter of the wrong JSON type; null and absent are left to yoga. */
export function checkEnvelope(params: unknown): void {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return;
  const given = params as Record<string, unknown>;
  for (const name of STRINGS) {
    const value = given[name];
    if (value != null && typeof value !== 'string') {
      throw badRequest(`Expected "${name}" param to be a string, but given ${typeName(value)}.`);
    }
  }
  for (const name of OBJECTS) {
    const value = given[name];
    if (value != null && typeName(value) !== 'object') {
      throw badRequest(`Expected "${name}" param to be empty or an object, but given ${typeName(value)}.`);
    }
  }
}

function jsonParam(search: URLSearchParams, name: string): unknown {
  const text = search.get(name);
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest(`The "${name}" param is not valid JSON.`);
  }
}

/** What yoga's GET and form parsers read, with JSON errors named. */
export function paramsFromSearch(search: URLSearchParams): GraphQLParams {
  return {
    query: search.get('query') || undefined,
    operationName: search.get('operationName') || undefined,
    variables: jsonParam(search, 'variables') as GraphQLParams['variables'],
    extensions: jsonParam(search, 'extensions') as GraphQLParams['extensions'],
  };
}

/** Yoga's rule for choosing its form parser (the first of a list of types). */
function isForm(request: Request): boolean {
  const type = request.headers.get('content-type')?.split(',')[0] ?? '';
  return type === 'application/x-www-form-urlencoded' || type.startsWith('application/x-www-form-urlencoded;');
}

/** First in the plugin list: its hooks run before every other plugin's. */
export function useRequestEnvelope(): Plugin {
  return {
    onRequestParse({ request, url, requestParser, setRequestParser }) {
      if (!requestParser) return;
      if (request.method === 'GET') setRequestParser(() => paramsFromSearch(url.searchParams));
      else if (request.method === 'POST' && isForm(request)) {
        setRequestParser(async (req) => paramsFromSearch(new URLSearchParams(await req.text())));
      }
    },
    onParams({ params }) {
      checkEnvelope(params);
    },
  };
}
