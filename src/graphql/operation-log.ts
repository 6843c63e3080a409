// Tells the request log which operation ran, for whom, and how it ended.

import type http from 'node:http';
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { requestInfo } from '../http/request-log.ts';
import type { GraphQLContext } from './context.ts';

type WithReq = { req?: http.IncomingMessage };

export function useOperationLog(): Plugin<GraphQLContext & WithReq, WithReq> {
  return {
    onExecute({ args }) {
      const req = args.contextValue.req;
      if (!req) return;
      const info = requestInfo(req);
      const operation = getOperationAST(args.document, args.operationName);
      info.operation = `${operation?.operation ?? 'unknown'} ${operation?.name?.value ?? '(anonymous)'}`;
      if (args.contextValue.viewer) info.userId = args.contextValue.viewer.id;
    },
    onResultProcess({ result, serverContext }) {
      if (!serverContext.req || Symbol.asyncIterator in result) return;
      const results = Array.isArray(result) ? result : [result];
      const codes = results.flatMap((r) => r.errors ?? []).map((e) => String(e.extensions?.code ?? 'ERROR'));
      requestInfo(serverContext.req).outcome = codes.length ? [...new Set(codes)].join(',') : 'ok';
    },
  };
}
