// Server-side access to a credential's secrets, for the trading code that
// calls the brokerage. Never exposed through GraphQL. Reads through the RLS
// wrapper, so a user id only ever opens that user's credentials.
import { openSecrets, type Secrets } from '../crypto/credential-sealing.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import { NotFoundError } from '../domain/errors.ts';
import { SEALED_SECRETS_SELECT } from './credential-rows.ts';

export async function readCredentialSecrets(
  db: Database,
  keyring: Keyring,
  userId: string,
  credentialId: string,
): Promise<Secrets> {
  const row = await db.withUser(userId, (tx) =>
    tx.credential.findUnique({
      where: { id: credentialId },
      select: SEALED_SECRETS_SELECT,
    }),
  );
  if (!row) throw new NotFoundError('Credential');
  return openSecrets(keyring, row, row);
}
