// Trusted documents (persisted operations): the SDK's operations are known
// when it is built, so the server can run only those. The manifest
// (src/sdk/generated/persisted-documents.json, written by `npm run codegen`)
// maps the SHA-256 of each document to its text; a client sends the hash,
// either as `extensions.persistedQuery.sha256Hash` (Apollo's and urql's
// persisted-query links) or as `documentId` ("sha256:<hash>" or the bare
// hash, the GraphQL-over-HTTP draft's form), and the server runs the text.
//
// TRUSTED_DOCUMENTS (src/config/load.ts):
//   required  only documents of the manifest, by hash; any other text is
//             refused before parsing (GraphiQL is off: it sends ad-hoc text);
//   allowed   by hash or as text (the default);
//   off       the manifest is not loaded; hashes are not understood.
// @graphql-yoga/plugin-persisted-operations does the work; this module
// loads and checks the manifest and words the refusals.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import { createGraphQLError, type GraphQLParams, type Plugin } from 'graphql-yoga';
import { documentHash } from '../sdk/codegen/trusted-documents.ts';

export type TrustedDocumentsMode = 'required' | 'allowed' | 'off';

const MANIFEST = path.resolve(import.meta.dirname, '../sdk/generated/persisted-documents.json');

/** hash → document text; every hash is checked against its text, so a tampered manifest does not load. */
export function loadTrustedDocuments(file = MANIFEST): ReadonlyMap<string, string> {
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  for (const [hash, document] of Object.entries(manifest)) {
    if (documentHash(document) !== hash) throw new Error(`${file}: the document listed as ${hash} has another hash`);
  }
  return new Map(Object.entries(manifest));
}

const HASH = /^[0-9a-f]{64}$/;

/** The hash a request names, in either conventional place; null when it names none. */
export function requestedHash(params: GraphQLParams & { documentId?: unknown }): string | null {
  const persisted = (params.extensions as { persistedQuery?: { version?: unknown; sha256Hash?: unknown } } | undefined)
    ?.persistedQuery;
  if (persisted?.version === 1 && typeof persisted.sha256Hash === 'string') return persisted.sha256Hash.toLowerCase();
  if (typeof params.documentId === 'string') return params.documentId.replace(/^sha256:/i, '').toLowerCase();
  return null;
}

const refusal = (message: string, code: string) => () =>
  createGraphQLError(message, { extensions: { code, http: { status: 400 } } });

export function useTrustedDocuments(mode: TrustedDocumentsMode, documents: ReadonlyMap<string, string>): Plugin {
  const persisted = usePersistedOperations({
    allowArbitraryOperations: mode === 'allowed',
    extractPersistedOperationId: (params) => requestedHash(params),
    getPersistedOperation: (hash) => (HASH.test(hash) ? (documents.get(hash) ?? null) : null),
    customErrors: {
      persistedQueryOnly: refusal(
        "This server runs trusted documents only: send the SHA-256 of one of the SDK's operations as " +
          'extensions.persistedQuery.sha256Hash (or documentId), not the query text.',
        'PERSISTED_QUERY_ID_REQUIRED',
      ),
      // Apollo's and urql's persisted-query links answer PERSISTED_QUERY_NOT_FOUND by
      // sending the text, which `allowed` runs; `required` has nothing to retry with.
      notFound:
        mode === 'required'
          ? refusal('No trusted document has this hash: use an operation of the SDK.', 'PERSISTED_QUERY_NOT_IN_LIST')
          : refusal('PersistedQueryNotFound', 'PERSISTED_QUERY_NOT_FOUND'),
      keyNotFound: refusal(
        'Send the SHA-256 of a trusted document as extensions.persistedQuery.sha256Hash (or documentId).',
        'PERSISTED_QUERY_ID_REQUIRED',
      ),
    },
  });
  const onParams = persisted.onParams;
  return {
    ...persisted,
    // A request that sends neither text nor hash is left to yoga ("Must provide
    // query string.", 400) in `allowed` mode, as without this plugin.
    onParams(payload) {
      if (mode === 'allowed' && payload.params.query == null && requestedHash(payload.params) == null) return;
      return onParams?.(payload);
    },
  };
}
