// What the command-line tasks do to the database (`npm run engine-client`,
// `rotate-key`, `migrate`), as one set of operations with two ways in: run
// by the task itself on the database it opened (PostgreSQL, or the embedded
// database when no server has it), or by the running server for it through
// its admin endpoint (endpoint.ts, client.ts), on the server's open database
// and with the server's keys. Each calls the same service function either way.
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import type { MigrationResult } from '../db/migrations.ts';
import {
  createEngineClient,
  type EngineClientInfo,
  listEngineClients,
  type NewEngineClient,
  type RevokedEngineClient,
  revokeEngineClient,
} from '../engine/clients.ts';
import { type RotationProgress, rotateCredentialKeys } from '../services/key-rotation.ts';

export interface AdminOperations {
  /** Where they run: the task's own database connection, or the running server. */
  readonly via: 'task' | 'server';
  createEngineClient(name: string): Promise<NewEngineClient>;
  listEngineClients(): Promise<EngineClientInfo[]>;
  /** The revoked client (with the number of its grants revoked with it), or null when there is none with that id. */
  revokeEngineClient(clientId: string): Promise<RevokedEngineClient | null>;
  /**
   * Re-encrypts every credential under the current key, which must be the
   * one named `keyId` (the caller's ENCRYPTION_KEY): else KeyMismatchError.
   */
  rotateKeys(
    keyId: string,
    batchSize: number,
    onProgress?: (progress: RotationProgress) => void,
  ): Promise<RotationProgress>;
  /** Applies pending migrations. */
  migrate(): Promise<MigrationResult>;
}

/** The caller's current key is not the one the operations seal with. */
export class KeyMismatchError extends Error {
  override name = 'KeyMismatchError';
  readonly serverKeyId: string;
  readonly callerKeyId: string;
  constructor(serverKeyId: string, callerKeyId: string) {
    super(
      `the running server seals with key ${serverKeyId}, this task's ENCRYPTION_KEY is ${callerKeyId}: ` +
        'restart the server with the new ENCRYPTION_KEY (the old one in ENCRYPTION_KEYS), then rotate',
    );
    this.serverKeyId = serverKeyId;
    this.callerKeyId = callerKeyId;
  }
}

/** The operations on an open database, sealing with `keyring`. */
export function databaseOperations(db: Database, keyring: Keyring, via: 'task' | 'server'): AdminOperations {
  return {
    via,
    createEngineClient: (name) => createEngineClient(db.unscopedClient, name),
    listEngineClients: () => listEngineClients(db.unscopedClient),
    revokeEngineClient: (clientId) => revokeEngineClient(db, clientId),
    rotateKeys: async (keyId, batchSize, onProgress) => {
      if (keyId !== keyring.current.id) throw new KeyMismatchError(keyring.current.id, keyId);
      return rotateCredentialKeys({ db, keyring, batchSize, ...(onProgress ? { onProgress } : {}) });
    },
    migrate: () => db.migrate(),
  };
}
