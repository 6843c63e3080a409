// The HTTP server span, and the one sampling decision of a request.
//
// Written here instead of @opentelemetry/instrumentation-http: that
// instrumentation builds attributes, extracts context and binds req/res on
// every request before the sampler has a say, which cost about a third of
// throughput. Here the SDK's configured sampler
// (OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, parent-based by default, so
// a sampled traceparent is honoured) decides once, when the request comes in:
// - sampled: a SERVER span named by route (`POST /graphql`) with the method,
//   route and status only (no path, query string or header), and the request
//   runs inside it, so the GraphQL, SQL, broker and engine spans are its
//   descendants;
// - not sampled: the request runs under suppressTracing with no span in its
//   context, so the pg instrumentation (requireParentSpan) and spans.ts make
//   nothing at all, not even non-recording spans.
import type http from 'node:http';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { methodName, routeName } from './routes.ts';

export function createHttpTracing(): (handler: http.RequestListener) => http.RequestListener {
  const tracer = trace.getTracer('brokerage-credentials-api/http');
  const unsampled = suppressTracing(ROOT_CONTEXT);
  return (handler) => (req, res) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    // Named and given attributes only once sampled: an unsampled request builds none.
    const span = tracer.startSpan('HTTP', { kind: SpanKind.SERVER }, parent);
    if (!span.isRecording()) {
      context.with(unsampled, handler, undefined, req, res);
      return;
    }
    const method = methodName(req.method);
    const route = routeName(req.url);
    span.updateName(`${method} ${route}`);
    span.setAttributes({ 'http.request.method': method, 'http.route': route });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      if (res.headersSent || res.writableFinished) {
        span.setAttribute('http.response.status_code', res.statusCode);
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      } else {
        // The client went away before an answer.
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(trace.setSpan(parent, span), handler, undefined, req, res);
  };
}
