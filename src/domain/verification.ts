// Rules of broker verification (docs/verification.md), free of HTTP and the
// database: which environment to ask first, when to ask the other, what an
// answer means, and what is stored of it.

export type BrokerEnvironment = 'PAPER' | 'LIVE';
export type VerificationStatus = 'UNVERIFIED' | 'VERIFIED' | 'INVALID' | 'UNREACHABLE';

export const VERIFICATION_STATUSES: readonly VerificationStatus[] = [
  'UNVERIFIED',
  'VERIFIED',
  'INVALID',
  'UNREACHABLE',
];
export const BROKER_ENVIRONMENTS: readonly BrokerEnvironment[] = ['PAPER', 'LIVE'];

/** The only credential type that can be verified so far. */
export const VERIFIABLE_TYPES = new Set(['alpaca']);

/** What one call to the broker came to (see src/brokers/alpaca.ts for how HTTP maps to it). */
export type BrokerAnswer =
  | { kind: 'accepted'; accountNumber: string; accountStatus: string }
  /** 401 or 403: these keys are not valid in that environment. */
  | { kind: 'rejected'; httpStatus: number }
  | { kind: 'unreachable'; reason: UnreachableReason; httpStatus?: number };

export type UnreachableReason =
  | 'timeout'
  | 'connection'
  | 'server-error'
  | 'rate-limited'
  | 'unreadable'
  | 'unexpected';

/** What is stored on the credential; the same shape answers Credential.verification. */
export interface VerificationState {
  status: VerificationStatus;
  checkedAt: Date | null;
  environment: BrokerEnvironment | null;
  brokerAccountNumber: string | null;
  brokerAccountStatus: string | null;
  message: string | null;
}

/** A credential's state before any check, and again once new keys are stored. */
export const UNVERIFIED: VerificationState = {
  status: 'UNVERIFIED',
  checkedAt: null,
  environment: null,
  brokerAccountNumber: null,
  brokerAccountStatus: null,
  message: null,
};

/** An apiKey starting with PK suggests paper (Alpaca's paper keys do), any other live. */
export function environmentsToTry(apiKey: string): [BrokerEnvironment, BrokerEnvironment] {
  return apiKey.startsWith('PK') ? ['PAPER', 'LIVE'] : ['LIVE', 'PAPER'];
}

/**
 * Keys can only travel in HTTP headers as visible ASCII. Alpaca's keys are
 * letters and digits; anything else cannot be valid there, and fetch would
 * throw an error that quotes the value, so such keys never leave the server.
 */
export function fitsInHeader(value: string): boolean {
  return /^[\x21-\x7e]+$/.test(value);
}

const MASK = '••••';

/** The broker's account number masked like apiKeyHint: "••••" and at most the last 4 characters. */
export function maskAccountNumber(accountNumber: string): string {
  const chars = [...accountNumber];
  const visible = Math.min(4, Math.floor(chars.length / 2));
  return MASK + chars.slice(chars.length - visible).join('');
}

const ENVIRONMENT_NAME: Record<BrokerEnvironment, string> = { PAPER: 'paper', LIVE: 'live' };

function unreachableMessage(environment: BrokerEnvironment, answer: BrokerAnswer & { kind: 'unreachable' }): string {
  const where = `Alpaca ${ENVIRONMENT_NAME[environment]}`;
  switch (answer.reason) {
    case 'timeout':
      return `${where} did not answer in time.`;
    case 'connection':
      return `Could not connect to ${where}.`;
    case 'server-error':
      return `${where} answered with a server error (HTTP ${answer.httpStatus}).`;
    case 'rate-limited':
      return `${where} is limiting requests (HTTP 429); try again later.`;
    case 'unreadable':
      return `${where} sent an answer that is not an account.`;
    default:
      return `${where} answered unexpectedly${answer.httpStatus ? ` (HTTP ${answer.httpStatus})` : ''}.`;
  }
}

/** The broker's account status as stored: its own word, bounded in length. */
function brokerWord(value: string): string {
  return value.slice(0, 64);
}

/**
 * Verifies by asking the broker: first the environment the key suggests,
 * then the other one only if the first refused the keys (401/403). A first
 * answer that is unreachable ends it: the keys may be fine, so asking the
 * other environment could only mislabel them.
 */
export async function verifyAtBroker(
  apiKey: string,
  ask: (environment: BrokerEnvironment) => Promise<BrokerAnswer>,
  now: () => Date = () => new Date(),
): Promise<VerificationState> {
  const [first, second] = environmentsToTry(apiKey);
  let environment = first;
  let answer = await ask(first);
  if (answer.kind === 'rejected') {
    environment = second;
    answer = await ask(second);
  }
  return stateOf(environment, answer, now());
}

function stateOf(environment: BrokerEnvironment, answer: BrokerAnswer, checkedAt: Date): VerificationState {
  switch (answer.kind) {
    case 'accepted':
      return {
        status: 'VERIFIED',
        checkedAt,
        environment,
        brokerAccountNumber: maskAccountNumber(answer.accountNumber),
        brokerAccountStatus: brokerWord(answer.accountStatus),
        message: null,
      };
    case 'rejected':
      return {
        ...UNVERIFIED,
        status: 'INVALID',
        checkedAt,
        message: `Alpaca paper and live both refused these keys (HTTP ${answer.httpStatus}).`,
      };
    case 'unreachable':
      return { ...UNVERIFIED, status: 'UNREACHABLE', checkedAt, message: unreachableMessage(environment, answer) };
  }
}

/** The result for keys that cannot be sent at all (see fitsInHeader). */
export function unsendableKeys(now: Date = new Date()): VerificationState {
  return {
    ...UNVERIFIED,
    status: 'INVALID',
    checkedAt: now,
    message: 'These keys contain characters Alpaca keys never have; they were not sent.',
  };
}

/** Rebuilds the state from stored columns (unknown values fall back to UNVERIFIED). */
export function verificationFromColumns(row: {
  verificationStatus: string;
  verificationCheckedAt: Date | null;
  verificationEnvironment: string | null;
  brokerAccountNumber: string | null;
  brokerAccountStatus: string | null;
  verificationMessage: string | null;
}): VerificationState {
  const status = VERIFICATION_STATUSES.find((s) => s === row.verificationStatus);
  if (!status || status === 'UNVERIFIED') return UNVERIFIED;
  return {
    status,
    checkedAt: row.verificationCheckedAt,
    environment: BROKER_ENVIRONMENTS.find((e) => e === row.verificationEnvironment) ?? null,
    brokerAccountNumber: row.brokerAccountNumber,
    brokerAccountStatus: row.brokerAccountStatus,
    message: row.verificationMessage,
  };
}

/** The columns that store a state (the write, and the reset when new keys are stored). */
export function verificationColumns(state: VerificationState) {
  return {
    verificationStatus: state.status,
    verificationCheckedAt: state.checkedAt,
    verificationEnvironment: state.environment,
    brokerAccountNumber: state.brokerAccountNumber,
    brokerAccountStatus: state.brokerAccountStatus,
    verificationMessage: state.message,
  };
}
