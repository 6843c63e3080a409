// The broker's base URLs (ALPACA_PAPER_URL, ALPACA_LIVE_URL): requests to
// them carry a user's keys, so only https, or plain http that never leaves
// the machine (a local stand-in or proxy).
import { isIPv4 } from 'node:net';
import { z } from 'zod';

/** localhost, 127.0.0.0/8 or ::1: traffic that never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

/**
 * A broker base URL: https, or plain http to a loopback address only. No path
 * beyond "/", query or credentials: /v2/account is appended to it.
 */
export const brokerUrl = z
  .string()
  .refine((v) => URL.canParse(v), 'must be a URL such as https://paper-api.alpaca.markets')
  .transform((v) => new URL(v))
  .refine(
    (u) => u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname)),
    'must be an https:// URL (plain http only on a loopback address: 127.0.0.0/8, ::1, localhost)',
  )
  .refine(
    (u) => !u.username && !u.password && !u.search && !u.hash && u.pathname === '/',
    'must be a base URL without path, query or user info',
  )
  .transform((u) => u.origin);
