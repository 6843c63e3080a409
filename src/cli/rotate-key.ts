// `npm run rotate-key [-- --batch-size N]`: re-encrypts every credential under
// ENCRYPTION_KEY. Run it after making the new key current and listing the old
// one in ENCRYPTION_KEYS (on every server). Safe to interrupt and run again;
// on PostgreSQL safe while servers run. PGlite is single-process: stop the
// server first.
import { Keyring } from '../crypto/keyring.ts';
import { openDatabase } from '../db/database.ts';
import { createLogger, syncStdout } from '../logger.ts';
import { rotateCredentialKeys } from '../services/key-rotation.ts';
import { parseTaskArgs, runTask, UsageError } from './task.ts';

// Keys as the servers have them: given, or the embedded database's development file (never generated).
const parse = () => {
  const { values } = parseTaskArgs({ options: { 'batch-size': { type: 'string', default: '500' } } });
  const batchSize = Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new UsageError('--batch-size must be a positive whole number');
  return batchSize;
};

await runTask('rotate-key', 'keys', parse, async (config, batchSize) => {
  const logger = createLogger(config.logLevel, syncStdout());
  const db = await openDatabase(config.database, { migrate: config.migrateOnStart, logger });
  const keyring = new Keyring(config.encryption.current, config.encryption.previous);
  const started = Date.now();
  try {
    const result = await rotateCredentialKeys({
      db,
      keyring,
      batchSize,
      onProgress: ({ done, total }) => logger.info({ done, total }, `rotated ${done}/${total}`),
    });
    const seconds = (Date.now() - started) / 1000;
    logger.info(
      { ...result, seconds, perSecond: Math.round(result.done / Math.max(seconds, 0.001)), keyId: keyring.current.id },
      result.remaining === 0 ? 'rotation complete' : 'rotation incomplete: rows changed meanwhile, run it again',
    );
    if (result.remaining !== 0) process.exitCode = 1;
  } finally {
    await db.close();
  }
});
