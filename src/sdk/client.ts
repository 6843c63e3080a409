// The typed client: the generated getSdk (one function per operation in
// src/sdk/operations) over a requester that POSTs to the API with fetch.
import { type DocumentNode, type GraphQLFormattedError, getOperationAST, print } from 'graphql';
import { getSdk } from './generated/sdk.ts';
import { documentHashes } from './generated/trusted-documents.ts';

export interface ClientOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql. */
  url: string;
  /** A session token: the `set-auth-token` header of sign-in or sign-up. Omit it to call anonymously. */
  token?: string;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** A fetch implementation; the global one by default. */
  fetch?: typeof fetch;
  /**
   * Send each operation as the hash of its trusted document
   * (`extensions.persistedQuery.sha256Hash`) instead of its text: what a
   * server with TRUSTED_DOCUMENTS=required accepts. Off by default.
   */
  trustedDocuments?: boolean;
}

/** The trusted document's hash of one of the SDK's operations; undefined for any other document. */
export function trustedDocumentHash(document: DocumentNode): string | undefined {
  const name = getOperationAST(document)?.name?.value;
  return name === undefined ? undefined : documentHashes[name];
}

/** Per call: `client.Accounts({}, { signal })`. */
export interface RequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/**
 * A request the API answered with errors, or with no GraphQL response at all.
 * `errors` is the response's `errors` array as sent (each with `extensions.code`);
 * `data` is whatever partial data came with it.
 */
export class GraphQLRequestError extends Error {
  override readonly name = 'GraphQLRequestError';

  readonly status: number;
  readonly errors: readonly GraphQLFormattedError[];
  readonly data: unknown;

  constructor(message: string, status: number, errors: readonly GraphQLFormattedError[], data: unknown = null) {
    super(message);
    this.status = status;
    this.errors = errors;
    this.data = data;
  }

  /** `extensions.code` of the first error: UNAUTHENTICATED, BAD_USER_INPUT, NOT_FOUND, CONFLICT... */
  get code(): string | undefined {
    const code = this.errors[0]?.extensions?.code;
    return typeof code === 'string' ? code : undefined;
  }
}

interface ExecutionResponse {
  data?: unknown;
  errors?: GraphQLFormattedError[];
}

/** One typed function per operation (written out so that the package's declarations name it). */
export type Client = ReturnType<typeof getSdk<RequestOptions>>;

export function createClient(options: ClientOptions): Client {
  const doFetch = options.fetch ?? fetch;
  const baseHeaders: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/graphql-response+json, application/json',
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    ...options.headers,
  };

  async function request<R, V>(document: DocumentNode, variables?: V, call?: RequestOptions): Promise<R> {
    const hash = options.trustedDocuments ? trustedDocumentHash(document) : undefined;
    const payload =
      hash === undefined
        ? { query: print(document), variables }
        : { variables, extensions: { persistedQuery: { version: 1, sha256Hash: hash } } };
    const res = await doFetch(options.url, {
      method: 'POST',
      headers: { ...baseHeaders, ...call?.headers },
      body: JSON.stringify(payload),
      signal: call?.signal ?? null,
    });
    const text = await res.text();
    let body: ExecutionResponse;
    try {
      body = JSON.parse(text) as ExecutionResponse;
    } catch {
      throw new GraphQLRequestError(`HTTP ${res.status}: not a GraphQL response`, res.status, []);
    }
    if (body.errors?.length) {
      const message = body.errors.map((e) => e.message).join('; ');
      throw new GraphQLRequestError(message, res.status, body.errors, body.data ?? null);
    }
    if (!res.ok || body.data == null) {
      throw new GraphQLRequestError(`HTTP ${res.status}: no data in the response`, res.status, []);
    }
    return body.data as R;
  }

  return getSdk<RequestOptions>(request);
}
