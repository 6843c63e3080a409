// Every key id stored credentials are sealed with must be in the configured
// keyring: a server missing one would start, answer /ready, and then fail
// every read and verification of those credentials. The ids are read without
// opening any row (Database.credentialKeyIds, as credential_key_reader).
import { invalid } from '../config/errors.ts';
import type { Config } from '../config/load.ts';
import type { Database } from '../db/database.ts';

/** The stored key ids that no configured key has, sorted. */
export function uncoveredKeyIds(stored: string[], encryption: Config['encryption']): string[] {
  const configured = new Set([encryption.current.id, ...encryption.previous.map((k) => k.id)]);
  return stored.filter((id) => !configured.has(id)).sort();
}

export async function checkKeyCoverage(db: Database, encryption: Config['encryption']): Promise<void> {
  const missing = uncoveredKeyIds(await db.credentialKeyIds(), encryption);
  if (missing.length === 0) return;
  const ids = missing.map((id) => `"${id}"`).join(', ');
  throw invalid([
    {
      variable: 'ENCRYPTION_KEYS',
      message:
        `stored credentials are sealed with key id${missing.length > 1 ? 's' : ''} ${ids} that no configured key has: ` +
        'list the key in ENCRYPTION_KEYS (id:base64key) until `npm run rotate-key` has re-sealed them under ENCRYPTION_KEY',
    },
  ]);
}
