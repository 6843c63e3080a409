// Keeps secrets that a client sent out of the errors it gets back.
//
// GraphQL's own errors quote input values: a missing field in StoreCredentialInput
// prints the whole input object, apiKey and secretKey included, and a literal
// of the wrong type is printed as found. No library strips these, so this
// plugin notes the secret values of each request (variables and literals of
// fields named like secrets) and removes them from every error message.

import type { ExecutionResult } from 'graphql';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

const SECRET_FIELDS = new Set(['apiKey', 'secretKey', 'password']);
/**
 * Values at least this long are removed wherever they appear. Shorter ones
 * would match ordinary words, so they are removed only where GraphQL prints
 * them as a quoted string (how it echoes input values).
 */
const MIN_BARE_LENGTH = 4;
const REDACTED = '[redacted]';

const LITERAL = /\b(?:apiKey|secretKey|password)\s*:\s*("""[\s\S]*?"""|"(?:[^"\\]|\\.)*"|[-+\w.]+)/g;

export function secretsIn(variables: unknown, query: string | undefined): string[] {
  const found = new Set<string>();
  const walk = (value: unknown, key?: string) => {
    if (value === null || value === undefined) return;
    if (typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, Array.isArray(value) ? key : k);
    } else if (key && SECRET_FIELDS.has(key)) {
      found.add(String(value));
    }
  };
  walk(variables);
  for (const [, literal] of (query ?? '').matchAll(LITERAL)) {
    if (!literal) continue;
    if (literal.startsWith('"""')) found.add(literal.slice(3, -3));
    else if (literal.startsWith('"')) {
      try {
        found.add(JSON.parse(literal) as string);
      } catch {
        found.add(literal.slice(1, -1));
      }
    } else found.add(literal);
  }
  return [...found].filter((s) => s.length > 0);
}

export function scrub(message: string, secrets: string[]): string {
  let out = message;
  for (const secret of secrets) {
    // GraphQL prints strings JSON-quoted; a long secret may also appear as sent.
    const quoted = JSON.stringify(secret);
    out = out.split(quoted).join(`"${REDACTED}"`);
    if (secret.length < MIN_BARE_LENGTH) continue;
    for (const form of new Set([secret, quoted.slice(1, -1)])) out = out.split(form).join(REDACTED);
  }
  return out;
}

function scrubResult(result: ExecutionResult, secrets: string[]): ExecutionResult {
  if (!result.errors?.length) return result;
  return {
    ...result,
    errors: result.errors.map((error) => {
      const message = scrub(error.message, secrets);
      if (message === error.message) return error;
      return new GraphQLError(message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        extensions: error.extensions,
      });
    }),
  };
}

export function useSecretScrubbing(): Plugin {
  const secretsByRequest = new WeakMap<Request, string[]>();
  return {
    onParams({ params, request }) {
      const secrets = secretsIn(params.variables, params.query);
      if (secrets.length > 0) secretsByRequest.set(request, secrets);
    },
    onResultProcess({ request, result, setResult }) {
      const secrets = secretsByRequest.get(request);
      if (!secrets) return;
      if (Array.isArray(result)) setResult(result.map((r) => scrubResult(r, secrets)));
      else if (!(Symbol.asyncIterator in result)) setResult(scrubResult(result as ExecutionResult, secrets));
    },
  };
}
