// The server's claim on DATA_DIR when it runs the embedded database: its
// files are opened by one process only (src/db/data-dir-lock.ts). A second
// server on the same DATA_DIR stops here, before it writes anything there,
// with one line naming DATA_DIR and who has it (exit 78). The lock lasts
// until the process ends; the command-line tasks then ask this server to do
// their work (src/admin).
import { ConfigError } from '../config/errors.ts';
import { describeHolder, lockDataDir } from '../db/data-dir-lock.ts';

export function claimDataDir(dataDir: string, embedded: boolean): void {
  if (!embedded) return;
  const attempt = lockDataDir(dataDir, 'server');
  if (!attempt.acquired) {
    throw new ConfigError(
      `DATA_DIR ${dataDir} is in use by ${describeHolder(attempt.holder)}: ` +
        'stop it first, or give this server a DATA_DIR of its own',
    );
  }
}
