// `brokerage-credentials-api/sdk`: the operations' types and TypedDocumentNode
// documents (for Apollo Client, urql or any client that takes them), and a
// small typed client over fetch.
export * from './generated/graphql.ts';
export type { Requester, Sdk } from './generated/sdk.ts';
export { createClient, GraphQLRequestError, type Client, type ClientOptions, type RequestOptions } from './client.ts';
