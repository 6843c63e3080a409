// `brokerage-credentials-api/sdk`: the operations' types and TypedDocumentNode
// documents (for Apollo Client, urql or any client that takes them), and a
// small typed client over fetch.

export {
  type Client,
  type ClientOptions,
  createClient,
  GraphQLRequestError,
  type RequestOptions,
  trustedDocumentHash,
} from './client.ts';
export * from './generated/graphql.ts';
export type { Requester, Sdk } from './generated/sdk.ts';
export { documentHashes } from './generated/trusted-documents.ts';
