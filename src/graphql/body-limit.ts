// The GraphQL request body limit (MAX_BODY_BYTES), instead of yoga's
// maxRequestBodySize: yoga pipes every POST body through a TransformStream
// and rebuilds the Request to count its bytes, whatever the Content-Length
// says, which costs every request measurable CPU. With a Content-Length, the
// header is the whole limit (the rule of src/http/body.ts); only a body
// without one (chunked) is counted as it streams, as yoga does. Same errors
// as yoga's.
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { declaredLength } from '../http/body.ts';

const tooLarge = () =>
  createGraphQLError('Request body too large', {
    extensions: { http: { status: 413 }, code: 'REQUEST_ENTITY_TOO_LARGE' },
  });

export function useBodySizeLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const declared = declaredLength(request.headers.get('content-length'), limit);
      if (declared === 'invalid') {
        throw createGraphQLError('Content-Length header is invalid.', {
          extensions: { http: { status: 400 }, code: 'BAD_REQUEST' },
        });
      }
      if (declared === 'too-large') throw tooLarge();
      if (declared === 'fits') return;
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
