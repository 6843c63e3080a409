// The GraphQL request body limit (MAX_BODY_BYTES), instead of yoga's
// maxRequestBodySize: yoga pipes every POST body through a TransformStream
// and rebuilds the Request to count its bytes, whatever the Content-Length
// says, which costs every request measurable CPU (issue 13). Node's HTTP
// parser never hands over more of a body than its Content-Length, so when
// there is one, checking the header is the whole limit; only a body without
// one (chunked) is counted as it streams, as yoga does. Same errors as yoga's.
import { createGraphQLError, type Plugin } from 'graphql-yoga';

const tooLarge = () =>
  createGraphQLError('Request body too large', {
    extensions: { http: { status: 413 }, code: 'REQUEST_ENTITY_TOO_LARGE' },
  });

// Only one non-negative integer is a valid Content-Length (not "1, 2", as in smuggling attempts).
const CONTENT_LENGTH = /^\d+$/;

export function useBodySizeLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const length = request.headers.get('content-length');
      if (length != null) {
        if (!CONTENT_LENGTH.test(length)) {
          throw createGraphQLError('Content-Length header is invalid.', {
            extensions: { http: { status: 400 }, code: 'BAD_REQUEST' },
          });
        }
        if (Number(length) > limit) throw tooLarge();
        return;
      }
      if (!requestParser || !request.body) return;
      setRequestParser((req) => {
        let bytes = 0;
        // As yoga does: a native body stream needs the native TransformStream.
        const Transform = req.body instanceof ReadableStream ? TransformStream : fetchAPI.TransformStream;
        const counted = (req.body as ReadableStream<Uint8Array>).pipeThrough(
          new Transform<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              bytes += chunk.byteLength;
              if (bytes > limit) controller.error(tooLarge());
              else controller.enqueue(chunk);
            },
          }),
        );
        return requestParser(
          new fetchAPI.Request(req.url, {
            method: req.method,
            headers: req.headers,
            signal: req.signal,
            body: counted,
            duplex: 'half',
          } as RequestInit),
        );
      });
    },
  };
}
