// A stand-in for an OpenTelemetry Collector (none can run here): a local
// OTLP/HTTP receiver that accepts POST /v1/traces in both encodings the
// server sends (docs/operations.md), http/json and http/protobuf, and keeps the spans.
// Protobuf bodies are decoded with protobufjs from the official OTLP .proto
// files (vendored under otlp-proto/, from open-telemetry/opentelemetry-proto
// v1.11.0, Apache-2.0), so an encoding mistake would show here as it would in
// a real collector. Both encodings are normalised to one plain shape.
import http from 'node:http';
import path from 'node:path';
import protobuf from 'protobufjs';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  status: { code: number; message: string };
  scope: string;
  resource: Record<string, unknown>;
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  /** Content types of the requests received, e.g. application/x-protobuf. */
  contentTypes: string[];
  /** Every request body as received, to search for a secret in raw bytes too. */
  rawBodies: Buffer[];
  close(): Promise<void>;
}

const PROTO_ROOT = path.join(import.meta.dirname, 'otlp-proto');

let requestType: Promise<protobuf.Type> | undefined;
function exportTraceServiceRequest(): Promise<protobuf.Type> {
  requestType ??= (async () => {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => path.join(PROTO_ROOT, target);
    await root.load('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: false });
    return root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  })();
  return requestType;
}

type AnyValue = Record<string, unknown> | undefined;

/** OTLP AnyValue (JSON or decoded protobuf) as a plain JS value. */
function plain(value: AnyValue): unknown {
  if (!value) return undefined;
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return Number(value.doubleValue);
  if ('arrayValue' in value) {
    return ((value.arrayValue as { values?: AnyValue[] }).values ?? []).map(plain);
  }
  if ('kvlistValue' in value) return attributes((value.kvlistValue as { values?: KeyValue[] }).values);
  if ('bytesValue' in value) return String(value.bytesValue);
  return undefined;
}

type KeyValue = { key: string; value?: AnyValue };
const attributes = (list: KeyValue[] | undefined) =>
  Object.fromEntries((list ?? []).map((kv) => [kv.key, plain(kv.value)]));

/** JSON carries ids as hex; protobuf as bytes (base64 once converted to an object). */
const hexId = (id: unknown, json: boolean) =>
  typeof id !== 'string' || id === '' ? '' : json ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: {
      scope?: { name?: string };
      spans?: {
        traceId?: string;
        spanId?: string;
        parentSpanId?: string;
        name?: string;
        kind?: number;
        attributes?: KeyValue[];
        events?: { name?: string; attributes?: KeyValue[] }[];
        status?: { code?: number; message?: string };
      }[];
    }[];
  }[];
}

function normalise(request: ExportRequest, json: boolean): ReceivedSpan[] {
  return (request.resourceSpans ?? []).flatMap((rs) =>
    (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((span) => ({
        traceId: hexId(span.traceId, json),
        spanId: hexId(span.spanId, json),
        parentSpanId: hexId(span.parentSpanId, json),
        name: span.name ?? '',
        kind: span.kind ?? 0,
        attributes: attributes(span.attributes),
        events: (span.events ?? []).map((e) => ({ name: e.name ?? '', attributes: attributes(e.attributes) })),
        status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
        scope: ss.scope?.name ?? '',
        resource: attributes(rs.resource?.attributes),
      })),
    ),
  );
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const type = await exportTraceServiceRequest();
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const rawBodies: Buffer[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    contentTypes.push(contentType);
    rawBodies.push(body);
    try {
      if (contentType === 'application/json') {
        spans.push(...normalise(JSON.parse(body.toString('utf8')) as ExportRequest, true));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else if (contentType === 'application/x-protobuf') {
        const decoded = type.toObject(type.decode(body), { longs: String, enums: Number, bytes: String });
        spans.push(...normalise(decoded as ExportRequest, false));
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } else {
        res.writeHead(415).end();
      }
    } catch (error) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    rawBodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
