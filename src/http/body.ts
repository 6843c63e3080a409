// Request body limits for node:http, in one place: what a Content-Length
// header says against a limit, and reading a bounded body before any
// transaction is open (a slow sender then costs no database connection).
// Node's HTTP parser never hands over more of a body than its Content-Length,
// so when there is one, checking the header is the whole limit; only a body
// without one (chunked) must be counted as it arrives.
import type http from 'node:http';

export type DeclaredLength = 'absent' | 'invalid' | 'too-large' | 'fits';

/** How long a body read here may take after its headers (the engine API, the token endpoint). */
export const BODY_DEADLINE_MS = 10_000;

// Only one non-negative integer is a valid Content-Length (not "1, 2", as in smuggling attempts).
const CONTENT_LENGTH = /^\d+$/;

/** What a Content-Length header (null or undefined: none) says about a body limited to `limit` bytes. */
export function declaredLength(value: string | null | undefined, limit: number): DeclaredLength {
  if (value == null) return 'absent';
  if (!CONTENT_LENGTH.test(value)) return 'invalid';
  return Number(value) > limit ? 'too-large' : 'fits';
}

export type BodyRead =
  | { kind: 'none' }
  | { kind: 'read'; bytes: Buffer }
  /** Longer than the limit: the rest was not read (answer, then close the connection). */
  | { kind: 'too-large' }
  /** A Content-Length that is not one whole number: nothing was read. */
  | { kind: 'invalid-length' }
  /** Not all there by the deadline: the rest is not waited for (answer 408, then close the connection). */
  | { kind: 'timeout' }
  /** The client closed its connection before the body ended: there is no one to answer. */
  | { kind: 'aborted' };

export interface ReadBodyOptions {
  /** How long after the headers the whole body may take (a slow sender holds nothing else, but not forever). */
  deadlineMs?: number;
}

/**
 * Reads the body of `req`, at most `limit` bytes: a Content-Length over the
 * limit is refused without reading a byte; a body without one is read up to
 * the limit and no further. Never rejects: every way it can end is a result.
 */
export async function readBody(
  req: http.IncomingMessage,
  limit: number,
  options: ReadBodyOptions = {},
): Promise<BodyRead> {
  const declared = declaredLength(req.headers['content-length'], limit);
  if (declared === 'too-large') return { kind: 'too-large' };
  if (declared === 'invalid') return { kind: 'invalid-length' };
  if (declared === 'absent' && req.headers['transfer-encoding'] === undefined) return { kind: 'none' };
  if (req.complete && req.readableEnded) return { kind: 'none' };
  // Events rather than `for await`: leaving an async iterator early destroys
  // the request, and with it the socket the refusal must still go out on.
  return new Promise<BodyRead>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer =
      options.deadlineMs === undefined
        ? undefined
        : setTimeout(() => {
            req.pause();
            done({ kind: 'timeout' });
          }, options.deadlineMs);
    const done = (result: BodyRead) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onGone).off('close', onClose);
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
    const onGone = () => done({ kind: 'aborted' });
    // 'close' before 'end': the connection went away mid-body.
    const onClose = () => {
      if (!req.complete) onGone();
    };
    req.on('data', onData).once('end', onEnd).once('error', onGone).once('close', onClose);
  });
}
