// verifyCredential: check a stored credential's keys at the broker without
// holding a database connection while it answers (docs/verification.md).
//
//   1. limits       the shared counters (database, before anything else)
//   2. read         one short withUser step: the sealed secrets and their version
//   3. broker       Alpaca is asked with NO transaction open (src/brokers/alpaca.ts)
//   4. write        in the operation's transaction, opened only now, and only if
//                   the keys are still the version that was checked
//                   (recordVerification, with its VERIFIED audit event); the
//                   field's selection is then read in the same transaction.
//
// How a field runs without the per-operation transaction:
// docs/architecture/request-transaction.md.
import type { AlpacaClient } from '../brokers/alpaca.ts';
import { openSecrets } from '../crypto/credential-sealing.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { OperationSteps, ScopedDb } from '../db/request-transaction.ts';
import { NotFoundError, UnsupportedCredentialTypeError } from '../domain/errors.ts';
import {
  fitsInHeader,
  unsendableKeys,
  VERIFIABLE_TYPES,
  type VerificationState,
  verificationColumns,
  verifyAtBroker,
} from '../domain/verification.ts';
import { Prisma } from '../generated/prisma/client.ts';
import { type RequestOrigin, recordCredentialEvent } from './credential-events.ts';
import { SEALED_SECRETS_SELECT } from './credential-rows.ts';
import type { VerificationLimiter } from './verification-limiter.ts';

export interface VerifyDeps {
  alpaca: AlpacaClient;
  limiter: VerificationLimiter;
  keyring: Keyring;
}

/** The SQL value of verified_environment after a check: see recordVerification. */
function verifiedEnvironmentAfter(state: VerificationState): Prisma.Sql {
  if (state.status === 'VERIFIED') return Prisma.sql`${state.environment}`;
  return state.status === 'UNREACHABLE' ? Prisma.sql`verified_environment` : Prisma.sql`NULL`;
}

/**
 * Writes a verification result and its VERIFIED audit event, unless the
 * credential's keys changed (or it was deleted) since `secretsVersion` was
 * read: compare-and-set on the version. Returns whether it was written. Runs
 * in the caller's scoped transaction, so the result and its event commit or
 * roll back together.
 */
export async function recordVerification(
  db: ScopedDb,
  check: { userId: string; credentialId: string; secretsVersion: number; request: RequestOrigin },
  state: VerificationState,
): Promise<boolean> {
  const v = verificationColumns(state);
  // SQL rather than updateMany: Prisma's @updatedAt would move updated_at, but
  // a check at the broker changes nothing the user stored (checkedAt says when).
  // verified_environment, where engine requests go (docs/engines.md):
  // set by VERIFIED, kept by UNREACHABLE (a broker briefly down says nothing
  // about the keys, and must not cut engines off), cleared by INVALID.
  const count = await db.$executeRaw`
    UPDATE user_credentials
       SET verification_status = ${v.verificationStatus}, verification_checked_at = ${v.verificationCheckedAt},
           verification_environment = ${v.verificationEnvironment}, broker_account_number = ${v.brokerAccountNumber},
           broker_account_status = ${v.brokerAccountStatus}, verification_message = ${v.verificationMessage},
           verified_environment = ${verifiedEnvironmentAfter(state)}
     WHERE id = ${check.credentialId}::uuid AND secrets_version = ${check.secretsVersion}`;
  if (count !== 1) return false;
  await recordCredentialEvent(db, {
    userId: check.userId,
    credentialId: check.credentialId,
    action: 'VERIFIED',
    verificationStatus: state.status,
    request: check.request,
  });
  return true;
}

/**
 * Runs steps 1-4 above and returns the operation's transaction, now open, in
 * which the caller reads the credential as it is now (absent: NOT_FOUND).
 */
export async function verifyCredential(
  { alpaca, limiter, keyring }: VerifyDeps,
  steps: OperationSteps,
  userId: string,
  credentialId: string,
  request: RequestOrigin,
): Promise<ScopedDb> {
  await limiter.consume(userId, credentialId);

  const row = await steps.step((db) =>
    db.credential.findUnique({
      where: { id: credentialId },
      select: { ...SEALED_SECRETS_SELECT, credentialType: true },
    }),
  );
  if (!row) throw new NotFoundError('Credential');
  if (!VERIFIABLE_TYPES.has(row.credentialType)) {
    throw new UnsupportedCredentialTypeError(row.credentialType, [...VERIFIABLE_TYPES]);
  }

  const keys = openSecrets(keyring, row, row);
  const state =
    fitsInHeader(keys.apiKey) && fitsInHeader(keys.secretKey)
      ? await verifyAtBroker(keys.apiKey, (environment) => alpaca.account(environment, keys))
      : unsendableKeys();

  const db = await steps.openOperationTransaction();
  await recordVerification(db, { userId, credentialId, secretsVersion: row.secretsVersion, request }, state);
  return db;
}
