// Headers the server sets on /api/auth/* requests before better-auth sees them.
import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';

/** Request header carrying the client's IP for better-auth (any client-sent value is overwritten). */
export const CLIENT_IP_HEADER = 'x-bca-client-ip';

export type ClientIpResolver = (req: IncomingMessage) => string;

/**
 * The client's IP address, for rate limiting: the socket's peer, or the
 * X-Forwarded-For entry a trusted proxy (TRUST_PROXY) vouches for, so a client
 * cannot pick its own address by sending the header.
 */
export function createClientIpResolver(trustedProxies: string[]): ClientIpResolver {
  const trust = proxyAddr.compile(trustedProxies);
  return (req) => proxyAddr(req, trust) ?? 'unknown';
}

/**
 * Prepares an auth request:
 * - stamps the resolved client IP;
 * - gives a request without an Origin header our own origin. better-auth
 *   rejects POSTs that carry Fetch Metadata (Node's fetch sends
 *   `Sec-Fetch-Mode: cors`) or a cookie but no Origin. Browsers always send
 *   Origin on POST, and it is still checked against the trusted origins; only
 *   non-browser clients omit it, and those could send any Origin they like, so
 *   requiring one protects nothing and breaks scripts.
 */
export function prepareAuthRequest(req: IncomingMessage, clientIp: ClientIpResolver, ownOrigin: string): void {
  req.headers[CLIENT_IP_HEADER] = clientIp(req);
  if (req.headers.origin === undefined) req.headers.origin = ownOrigin;
}
