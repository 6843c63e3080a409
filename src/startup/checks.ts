// The start-up checks (docs/configuration.md): a server that cannot serve what
// it stores does not start. Each refusal is a ConfigError (exit 78, one line
// per problem naming the variable). Their time is measured here and logged
// once at info ("start-up checks passed"), which is how their cost is known.
// Those that need the database are in database-checks.ts: that module loads
// pg, which main.ts may only load once tracing runs (it patches pg).
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import { checkListenAddress } from './listen-address.ts';

export type CheckTimes = Record<string, number>;

export async function timed(times: CheckTimes, name: string, check: () => Promise<void>): Promise<void> {
  const started = performance.now();
  await check();
  times[name] = Math.round((performance.now() - started) * 10) / 10;
}

/** Before the database opens: what needs no database. */
export async function checkBeforeDatabase(config: Config, times: CheckTimes): Promise<void> {
  await timed(times, 'listenAddress', () => checkListenAddress(config.host));
}

export function logCheckTimes(logger: Logger, times: CheckTimes): void {
  const ms = Math.round(Object.values(times).reduce((a, b) => a + b, 0) * 10) / 10;
  logger.info({ ms, checks: times }, 'start-up checks passed');
}
