// The device cookie of OWASP's "Slow Down Online Guessing Attacks with Device
// Cookies": a browser where someone signed in to an email with its password
// gets a cookie naming a random device id and that email, signed with the
// better-auth secret (HMAC-SHA256, better-call's signed cookies). A later
// sign-in for the same email from that browser is counted on the device's own
// counter instead of its address's, so an attacker sharing the address (one
// NAT or proxy) cannot throttle it. Only the right password earns one, so an
// attacker can hold cookies for their own emails only, and those change
// nothing for anyone else's counters.
import { createHash, randomBytes } from 'node:crypto';
import { emailKey } from './attempt-limiter.ts';

export const DEVICE_COOKIE = 'bca_device';
export const DEVICE_COOKIE_MAX_AGE_SECONDS = 180 * 24 * 60 * 60;

function emailDigest(email: string): string {
  return createHash('sha256').update(emailKey(email)).digest('base64url').slice(0, 22);
}

export function newDeviceId(): string {
  return randomBytes(16).toString('base64url');
}

/** The cookie's (unsigned) value for a device and the email signed in to. */
export function deviceCookieValue(deviceId: string, email: string): string {
  return `${deviceId}:${emailDigest(email)}`;
}

/**
 * The device id of a verified cookie value (better-call's getSignedCookie:
 * null when absent, false when the signature is wrong) when it was issued for
 * this email; otherwise undefined.
 */
export function deviceFor(verified: string | false | null, email: string | undefined): string | undefined {
  if (!verified || !email) return undefined;
  const [deviceId, digest, ...rest] = verified.split(':');
  if (rest.length > 0 || !deviceId || !/^[A-Za-z0-9_-]{22}$/.test(deviceId)) return undefined;
  return digest === emailDigest(email) ? deviceId : undefined;
}
