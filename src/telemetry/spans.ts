// The spans we make ourselves, on @opentelemetry/api (tracing.ts loads this
// module only when tracing is on): GraphQL, the broker call, and SQL on the
// embedded PGlite.
//
// GraphQL spans: one per operation (`query Overview`, with
// graphql.operation.type and .name) holding graphql.parse, graphql.validate
// and graphql.execute, the SQL spans of the RLS transaction inside the last.
//
// Written here on @opentelemetry/api rather than with @envelop/opentelemetry:
// that plugin (9.2) makes an execute span only (no parse or validate),
// records the document text unless told not to, and records every error
// message as an exception event; variable-coercion errors quote the value
// they refused, which can be a secret. Here no document, variable, argument,
// result or error message is recorded: names, types and error codes only.
//
// Every span here is made only for a sampled request: under the
// suppressTracing context http-span.ts gives an unsampled one, each hook
// returns before building a span or an attribute.

import type { PGlite, Transaction } from '@electric-sql/pglite';
import { type Context, context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';
import { type DocumentNode, type GraphQLError, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { BrokerCallRecord, EngineCallRecord } from './telemetry.ts';

interface Operation {
  span: Span;
  context: Context;
}

type YogaContext = { request: Request; params?: { operationName?: string | null } };

const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
type Errors = readonly (Error | GraphQLError)[] | undefined;

const codeOf = (errors: Errors) => {
  const code = (errors?.[0] as GraphQLError | undefined)?.extensions?.code;
  return typeof code === 'string' && CODE.test(code) ? code : 'ERROR';
};

function failed(span: Span, errors: Errors) {
  span.setAttribute('graphql.error.code', codeOf(errors));
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** Whether the request in progress is traced (false for an unsampled one). */
const traced = () => !isTracingSuppressed(context.active());

export function useGraphQLTracing(): Plugin {
  const tracer = trace.getTracer('brokerage-credentials-api/graphql');
  const operations = new WeakMap<Request, Operation>();
  // Documents this process has parsed, and validated: when yoga serves one
  // from its cache again, a parse or validate span would measure a map
  // lookup, so none is made.
  const parsed = new WeakSet<DocumentNode>();
  const validated = new WeakSet<DocumentNode>();

  const name = (operation: Operation, document: DocumentNode, operationName: string | null | undefined) => {
    const ast = getOperationAST(document, operationName);
    if (!ast) return;
    const opName = ast.name?.value;
    operation.span.updateName(opName ? `${ast.operation} ${opName}` : ast.operation);
    operation.span.setAttribute('graphql.operation.type', ast.operation);
    if (opName) operation.span.setAttribute('graphql.operation.name', opName);
  };

  const plugin: Plugin<YogaContext> = {
    onParse({ context: yogaContext }) {
      if (!traced()) return;
      const span = tracer.startSpan('graphql.operation', { kind: SpanKind.INTERNAL });
      const operation = { span, context: trace.setSpan(context.active(), span) };
      operations.set(yogaContext.request, operation);
      // Started now, recorded once we know the parser ran (not the cache).
      const startTime = Date.now();
      const started = performance.now();
      return ({ result }) => {
        if (result && !(result instanceof Error)) {
          name(operation, result, yogaContext.params?.operationName);
          if (parsed.has(result)) return;
          parsed.add(result);
        }
        const parse = tracer.startSpan('graphql.parse', { startTime }, operation.context);
        if (result instanceof Error) failed(parse, [result]);
        parse.end(startTime + (performance.now() - started));
      };
    },
    onValidate({ context: yogaContext, params }) {
      const operation = operations.get(yogaContext.request);
      if (!operation || validated.has(params.documentAST)) return;
      const validate = tracer.startSpan('graphql.validate', {}, operation.context);
      return ({ valid, result }) => {
        if (valid) validated.add(params.documentAST);
        else failed(validate, result);
        validate.end();
      };
    },
    onExecute({ args, setExecuteFn, executeFn }) {
      if (!traced()) return;
      const operation = operations.get(args.contextValue.request);
      const parent = operation?.context ?? context.active();
      const execute = tracer.startSpan('graphql.execute', {}, parent);
      const inside = trace.setSpan(parent, execute);
      setExecuteFn((executeArgs) => context.with(inside, () => executeFn(executeArgs)));
      return {
        onExecuteDone({ result }) {
          if (!(Symbol.asyncIterator in result) && result.errors?.length) failed(execute, result.errors);
          execute.end();
        },
      };
    },
    onResultProcess({ request, result }) {
      const operation = operations.get(request);
      if (!operation) return;
      operations.delete(request);
      const errors = Symbol.asyncIterator in result ? undefined : (Array.isArray(result) ? result[0] : result)?.errors;
      if (errors?.length) failed(operation.span, errors);
      operation.span.end();
    },
  };
  return plugin as Plugin;
}

/**
 * `broker.request` around one broker call: the environment, and once it
 * ended the HTTP status and the outcome. Nothing else (no URL, no header, no
 * error message): the caller reports what it learnt through BrokerCall.
 */
export function createBrokerSpan() {
  const tracer = trace.getTracer('brokerage-credentials-api/broker');
  return <T>(record: BrokerCallRecord, run: () => Promise<T>): Promise<T> =>
    !traced()
      ? run()
      : tracer.startActiveSpan(
          'broker.request',
          { kind: SpanKind.CLIENT, attributes: { 'broker.environment': record.environment } },
          async (span) => {
            try {
              return await run();
            } finally {
              if (record.status !== undefined) span.setAttribute('http.response.status_code', record.status);
              if (record.outcome) span.setAttribute('broker.outcome', record.outcome);
              if (record.outcome === 'unreachable') span.setStatus({ code: SpanStatusCode.ERROR });
              span.end();
            }
          },
        );
}

/**
 * `engine.request` around one request to the engine API: once it ended, the
 * client id, the matched "METHOD /template", the status and the outcome.
 * Nothing else (no path value, query, header or token). The broker.request
 * span of its forward, and its SQL spans, are its children.
 */
export function createEngineSpan() {
  const tracer = trace.getTracer('brokerage-credentials-api/engine');
  return <T>(record: EngineCallRecord, run: () => Promise<T>): Promise<T> =>
    !traced()
      ? run()
      : tracer.startActiveSpan('engine.request', { kind: SpanKind.INTERNAL }, async (span) => {
          try {
            return await run();
          } finally {
            if (record.clientId !== undefined) span.setAttribute('engine.client_id', record.clientId);
            if (record.request !== undefined) span.setAttribute('engine.request', record.request);
            if (record.status !== undefined) span.setAttribute('http.response.status_code', record.status);
            if (record.outcome !== undefined) span.setAttribute('engine.outcome', record.outcome);
            if (record.guardrailRule !== undefined) span.setAttribute('engine.guardrail_rule', record.guardrailRule);
            if ((record.status ?? 500) >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
            span.end();
          }
        });
}

/**
 * SQL spans on the embedded PGlite, shaped like the pg instrumentation's
 * (there is none for PGlite): the statement text, whose values Prisma sends
 * as $1, $2 parameters, and never the parameters themselves.
 */
export function instrumentPglite(db: PGlite): void {
  const tracer = trace.getTracer('brokerage-credentials-api/pglite');
  const withSpans = <Q extends PGlite['query']>(query: Q): Q =>
    ((sql: string, ...rest: unknown[]) => {
      if (!traced()) return (query as (...args: unknown[]) => Promise<unknown>)(sql, ...rest);
      const operation = sql.trimStart().split(/\s/, 1)[0]?.toUpperCase() || 'QUERY';
      return tracer.startActiveSpan(
        `pglite.query:${operation}`,
        {
          kind: SpanKind.CLIENT,
          attributes: { 'db.system.name': 'postgresql', 'db.operation.name': operation, 'db.query.text': sql },
        },
        async (span) => {
          try {
            return await (query as (...args: unknown[]) => Promise<unknown>)(sql, ...rest);
          } catch (error) {
            span.setStatus({ code: SpanStatusCode.ERROR });
            throw error;
          } finally {
            span.end();
          }
        },
      );
    }) as Q;
  db.query = withSpans(db.query.bind(db));
  const transaction = db.transaction.bind(db);
  db.transaction = (<T>(work: (tx: Transaction) => Promise<T>) =>
    transaction((tx) => {
      tx.query = withSpans(tx.query.bind(tx));
      return work(tx);
    })) as PGlite['transaction'];
}
