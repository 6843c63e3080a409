// Broker verification (docs/verification.md): the CredentialVerification type
// and its enums (VerificationStatus is also CredentialEvent.verificationStatus).
// Credential.verification and verifyCredential are in
// credential.ts.
import { BROKER_ENVIRONMENTS, VERIFICATION_STATUSES, type VerificationState } from '../domain/verification.ts';
import { builder } from './builder.ts';

const BrokerEnvironmentRef = builder.enumType('BrokerEnvironment', {
  description: 'Which Alpaca environment accepted the keys.',
  values: BROKER_ENVIRONMENTS,
});

export const VerificationStatusRef = builder.enumType('VerificationStatus', {
  description:
    'UNVERIFIED: never checked, or new keys since. VERIFIED: the broker accepted the keys. ' +
    'INVALID: paper and live both refused them. UNREACHABLE: no usable answer (timeout, connection, 5xx, 429, unreadable).',
  values: VERIFICATION_STATUSES,
});

export const CredentialVerificationRef = builder.objectRef<VerificationState>('CredentialVerification').implement({
  description: "The last check of a credential's keys at the broker. Never holds a secret.",
  fields: (t) => ({
    status: t.field({ type: VerificationStatusRef, resolve: (v) => v.status }),
    checkedAt: t.field({ type: 'DateTime', nullable: true, resolve: (v) => v.checkedAt }),
    environment: t.field({
      type: BrokerEnvironmentRef,
      nullable: true,
      description: 'The environment that accepted the keys; only when VERIFIED.',
      resolve: (v) => v.environment,
    }),
    brokerAccountNumber: t.string({
      nullable: true,
      description: 'The broker account number, masked like apiKeyHint; only when VERIFIED.',
      resolve: (v) => v.brokerAccountNumber,
    }),
    brokerAccountStatus: t.string({
      nullable: true,
      description: 'The broker\'s own word for the account, e.g. "ACTIVE"; only when VERIFIED.',
      resolve: (v) => v.brokerAccountStatus,
    }),
    message: t.string({
      nullable: true,
      description: 'A short reason for INVALID or UNREACHABLE.',
      resolve: (v) => v.message,
    }),
  }),
});
