// HOST must name an address of this machine. Checked before the database is
// opened (a name that does not resolve), and again where the listeners bind
// (an address that is not local, a port in use): either way one line naming
// the variable, instead of the stack trace node:net throws.
import { lookup } from 'node:dns/promises';
import { invalid } from '../config/errors.ts';

export async function checkListenAddress(host: string | undefined): Promise<void> {
  if (host === undefined) return;
  try {
    await lookup(host);
  } catch (error) {
    throw invalid([
      {
        variable: 'HOST',
        message: `"${host}" does not resolve (${(error as NodeJS.ErrnoException).code ?? 'lookup failed'}): give an address or name of this machine (127.0.0.1, ::1, 0.0.0.0, ::), or leave it unset for every interface`,
      },
    ]);
  }
}

/** What a failed listen() means for configuration, or undefined when it is something else. */
export function listenRefusal(
  error: NodeJS.ErrnoException,
  host: string | undefined,
  port: number,
  portVariable: 'PORT' | 'METRICS_PORT',
): Error | undefined {
  const where = host === undefined ? `port ${port}` : `${host} port ${port}`;
  switch (error.code) {
    case 'EADDRNOTAVAIL':
      return invalid([{ variable: 'HOST', message: `"${host}" is not an address of this machine: give one it has` }]);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return invalid([
        { variable: 'HOST', message: `"${host}" does not resolve: give an address or name of this machine` },
      ]);
    case 'EADDRINUSE':
      return invalid([
        { variable: portVariable, message: `${where} is in use: stop what listens there or pick another port` },
      ]);
    case 'EACCES':
      return invalid([
        { variable: portVariable, message: `${where} needs privileges this process lacks: pick a port above 1023` },
      ]);
    default:
      return undefined;
  }
}

/**
 * Where a listener can be reached, from the address it is bound to: that
 * address itself, or for every interface (`::`, `0.0.0.0`: HOST unset, or
 * one of those) the localhost URL to open, marked "(all interfaces)".
 */
export function listeningAt(address: string, port: number, path = ''): { url: string; where: string } {
  if (address === '::' || address === '0.0.0.0') {
    const url = `http://localhost:${port}${path}`;
    return { url, where: `${url} (all interfaces)` };
  }
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}${path}`;
  return { url, where: url };
}
