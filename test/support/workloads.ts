// The three operations the benchmark measures (npm run bench, test/perf): one
// definition, so the benchmark and the round-trip test load the same thing.
// Named operations: the raw baseline server (bench/baseline-server.ts)
// dispatches on operationName, so both servers receive identical bytes.
import { randomBytes } from 'node:crypto';

export type WorkloadName = 'W1' | 'W2' | 'W3';

export const W1_ACCOUNTS =
  'query Accounts { accounts { id accountName credentials { id nickname credentialType apiKeyHint } } }';

export const W2_STORE_CREDENTIAL =
  'mutation StoreCredential($input: StoreCredentialInput!) { storeCredential(input: $input) { id nickname credentialType apiKeyHint } }';

export const W3_GET_OR_CREATE_ACCOUNT =
  'mutation GetOrCreateAccount($input: GetOrCreateAccountInput) { getOrCreateAccount(input: $input) { created account { id accountName } } }';

export const OPERATION_NAMES: Record<WorkloadName, string> = {
  W1: 'Accounts',
  W2: 'StoreCredential',
  W3: 'GetOrCreateAccount',
};

/** A fresh Alpaca-like key pair: every call differs. */
export function randomAlpacaKeys(): { apiKey: string; secretKey: string } {
  return {
    apiKey: `PK${randomBytes(9).toString('hex').toUpperCase()}`,
    secretKey: randomBytes(30).toString('base64url'),
  };
}

export interface WorkloadRequest {
  query: string;
  operationName: string;
  variables?: Record<string, unknown>;
}

/** One request of `workload` for the user owning `accountId` (W2 only uses it). */
export function workloadRequest(workload: WorkloadName, accountId: string): WorkloadRequest {
  switch (workload) {
    case 'W1':
      return { query: W1_ACCOUNTS, operationName: OPERATION_NAMES.W1 };
    case 'W2':
      return {
        query: W2_STORE_CREDENTIAL,
        operationName: OPERATION_NAMES.W2,
        variables: { input: { accountId, credentialType: 'alpaca', nickname: 'Bench', ...randomAlpacaKeys() } },
      };
    case 'W3':
      return {
        query: W3_GET_OR_CREATE_ACCOUNT,
        operationName: OPERATION_NAMES.W3,
        variables: { input: { accountName: 'Bench account' } },
      };
  }
}

/** The JSON body of one request (fresh random keys for W2 on every call). */
export function workloadBody(workload: WorkloadName, accountId: string): string {
  return JSON.stringify(workloadRequest(workload, accountId));
}
