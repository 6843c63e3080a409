// The outcome of checking a credential against its broker (contract section
// 8). Kept in a module of its own: the audit trail records it on VERIFIED
// events, and broker verification sets it on the credential.

export const VERIFICATION_STATUSES = ['UNVERIFIED', 'VERIFIED', 'INVALID', 'UNREACHABLE'] as const;

export type VerificationStatus = (typeof VERIFICATION_STATUSES)[number];
