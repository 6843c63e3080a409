// The last step before spans leave the process: whatever an instrumentation
// recorded, what goes out holds no secret, token, password, cookie or
// parameter value (docs/operations.md). Instrumentations are configured not
// to record such things in the first place (tracing.ts); this is the rule
// that holds even if one of them, or a later version, does.
//
// - SQL text keeps its shape, with every quoted literal replaced by `?` (the
//   placeholder OpenTelemetry's SQL conventions use): Prisma sends values as
//   $1, $2 parameters, but request-transaction.ts inlines the user id and role into the
//   BEGIN it sends (escapeLiteral), and those are values too.
// - URLs lose their query string (GET /graphql?query=...&variables=... can
//   carry variables); url.query is dropped.
// - Header attributes, parameter values, GraphQL documents and variables are
//   dropped whatever their source.
// - Error messages (status message, exception message and stack) are
//   dropped: database and validation errors quote the values they refused.
//   The exception type and the span's error status remain.
import type { Attributes, AttributeValue } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter, TimedEvent } from '@opentelemetry/sdk-trace';

const SQL_TEXT = new Set(['db.query.text', 'db.statement']);
const URLS = new Set(['url.full', 'http.url', 'http.target']);
const DROPPED = new Set([
  'url.query',
  'db.postgresql.values',
  'graphql.document',
  'graphql.execute.document',
  'graphql.execute.variables',
  'graphql.execute.result',
  'graphql.resolver.args',
  'exception.message',
  'exception.stacktrace',
]);
const DROPPED_PREFIXES = [
  'http.request.header.',
  'http.response.header.',
  'db.query.parameter.',
  'rpc.request.metadata.',
];

/**
 * A `--` comment (kept: an apostrophe in it is no quote), or a quoted literal:
 * `'...'` with '' escapes, or E'...' with backslash escapes (replaced by `?`).
 */
const COMMENT_OR_LITERAL = /--[^\n]*|\b[eE]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'/g;

export const redactSql = (sql: string): string =>
  sql.replace(COMMENT_OR_LITERAL, (match) => (match.startsWith('--') ? match : '?'));

export const withoutQuery = (url: string): string => {
  const cut = url.search(/[?#]/);
  return cut === -1 ? url : url.slice(0, cut);
};

export function redactAttributes(attributes: Attributes): Attributes {
  const safe: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (DROPPED.has(key) || DROPPED_PREFIXES.some((prefix) => key.startsWith(prefix))) continue;
    safe[key] =
      typeof value === 'string' && SQL_TEXT.has(key)
        ? redactSql(value)
        : typeof value === 'string' && URLS.has(key)
          ? withoutQuery(value)
          : (value as AttributeValue | undefined);
  }
  return safe;
}

export function redactSpan(span: ReadableSpan): ReadableSpan {
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => span.spanContext(),
    parentSpanContext: span.parentSpanContext,
    startTime: span.startTime,
    endTime: span.endTime,
    // The code stays (ERROR is what alerts look at); the message may quote input.
    status: { code: span.status.code },
    attributes: redactAttributes(span.attributes),
    links: span.links.map((link) => ({ ...link, attributes: link.attributes && redactAttributes(link.attributes) })),
    events: span.events.map(
      (event): TimedEvent => ({ ...event, attributes: event.attributes && redactAttributes(event.attributes) }),
    ),
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/** Wraps the OTLP exporter: every span is redacted on its way out. */
export class RedactingSpanExporter implements SpanExporter {
  readonly #inner: SpanExporter;

  constructor(inner: SpanExporter) {
    this.#inner = inner;
  }

  export(spans: ReadableSpan[], resultCallback: Parameters<SpanExporter['export']>[1]): void {
    this.#inner.export(spans.map(redactSpan), resultCallback);
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}
