// GET /engine/v1/grants: the active grants of the calling client, with what
// an engine needs to know of each (account, nickname, environment, its
// guardrails and today's usage), never a key. One statement whatever the
// number of owners (engine_client_grants: the client's scope collects the
// grants, each owner's scope reads their credential), under a per-client
// limit of its own.
import type { Database } from '../db/database.ts';
import { statement } from '../db/request-transaction.ts';
import type { GuardrailsJson } from '../domain/guardrails.ts';

/** Most grants listed (newest first); `hasMore` says when there are others. */
export const GRANTS_LIST_MAX = 100;

/** Listings per client per minute: an engine reads its grants at start and now and then, not per order. */
export const GRANTS_LIST_RATE_LIMIT = 60;

export interface ListedGrant {
  id: string;
  credentialId: string;
  accountId: string;
  nickname: string;
  scopes: string[];
  environment: 'PAPER' | 'LIVE' | null;
  expiresAt: string | null;
  guardrails: GuardrailsJson;
  usageToday: { tradingDay: string; orders: number; notional: string };
}

export type GrantList =
  | { outcome: 'ok'; clientId: string; grants: ListedGrant[]; hasMore: boolean }
  | { outcome: 'rate-limited'; clientId: string; retryAfter: number }
  | { outcome: 'unauthenticated' };

export async function listClientGrants(db: Database, tokenHash: string): Promise<GrantList> {
  const [row] = await db.inOneMessage<{ list: GrantList }>(
    'no-one',
    statement`SELECT engine_client_grants(${tokenHash}, ${GRANTS_LIST_MAX}::int, ${GRANTS_LIST_RATE_LIMIT}::int) AS "list"`,
  );
  const list = row?.list;
  if (!list) throw new Error('engine_client_grants returned nothing');
  if (list.outcome !== 'ok') return list;
  // Dates as JSON.stringify writes them elsewhere in the API (ISO 8601, UTC, milliseconds).
  const grants = list.grants.map((g) => ({ ...g, expiresAt: g.expiresAt && new Date(g.expiresAt).toISOString() }));
  return { ...list, grants };
}
