// Reading a bounded request body from node:http, before any transaction is
// open (a slow sender then costs no database connection). A Content-Length
// over the limit is refused without reading a byte; a body without one is
// read up to the limit and no further.
import type http from 'node:http';

export type BodyRead =
  | { kind: 'none' }
  | { kind: 'read'; bytes: Buffer }
  /** Longer than the limit: the rest was not read (answer, then close the connection). */
  | { kind: 'too-large' };

export async function readBody(req: http.IncomingMessage, limit: number): Promise<BodyRead> {
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) > limit) return { kind: 'too-large' };
  if (length === undefined && req.headers['transfer-encoding'] === undefined) return { kind: 'none' };
  // Events rather than `for await`: leaving an async iterator early destroys
  // the request, and with it the socket the refusal must still go out on.
  return new Promise<BodyRead>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (result: BodyRead) => {
      req.off('data', onData).off('end', onEnd).off('error', reject);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        done({ kind: 'too-large' });
      } else chunks.push(chunk);
    };
    const onEnd = () => done(size === 0 ? { kind: 'none' } : { kind: 'read', bytes: Buffer.concat(chunks) });
    req.on('data', onData).once('end', onEnd).once('error', reject);
  });
}
