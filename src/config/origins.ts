// Browser origins: how TRUSTED_ORIGINS entries are read, which origins an
// unconfigured server trusts (this machine's), and how both follow the port
// actually bound.
import type { Config } from './load.ts';

/**
 * A browser origin as written in configuration: http(s)://host[:port], with
 * no path (not even "/"), query, fragment, user info or wildcard. Returns it
 * as browsers send it in Origin (lower-case host, default port left out), or
 * undefined when the value is not such an origin. TRUSTED_ORIGINS entries
 * must pass it: a CORS allow-list entry is compared with Origin exactly.
 */
export function parseOrigin(value: string): string | undefined {
  if (!/^https?:\/\/[^/?#@*\s]+$/i.test(value) || !URL.canParse(value)) return undefined;
  return new URL(value).origin;
}

/** How a browser on this machine reaches an unconfigured server. */
export function localOrigins(port: number): string[] {
  return [`http://localhost:${port}`, `http://127.0.0.1:${port}`, `http://[::1]:${port}`];
}

/**
 * The configuration once the server listens: without BETTER_AUTH_URL, the
 * public URL is http://localhost on the port actually bound (PORT=0 picks one).
 */
export function forListeningPort(config: Config, port: number): Config {
  if (config.auth.baseURLConfigured || port === config.port) return config;
  const stale = new Set(localOrigins(config.port));
  return {
    ...config,
    port,
    auth: {
      ...config.auth,
      baseURL: `http://localhost:${port}`,
      trustedOrigins: [...localOrigins(port), ...config.auth.trustedOrigins.filter((o) => !stale.has(o))],
    },
  };
}
