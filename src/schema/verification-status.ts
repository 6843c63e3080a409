// enum VerificationStatus (contract section 8): the outcome of a broker check.
// Its own module because the audit trail (CredentialEvent.verificationStatus)
// and broker verification (Credential.verification) both use it.
import { VERIFICATION_STATUSES } from '../domain/verification-status.ts';
import { builder } from './builder.ts';

export const VerificationStatusEnum = builder.enumType('VerificationStatus', {
  values: VERIFICATION_STATUSES,
});
