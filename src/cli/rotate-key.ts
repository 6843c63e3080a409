// `npm run rotate-key [-- --batch-size N]`: re-encrypts every credential under
// ENCRYPTION_KEY. Run it after making the new key current and listing the old
// one in ENCRYPTION_KEYS (on every server). Safe to interrupt and run again,
// and safe while servers run: on PostgreSQL beside them; on the embedded
// database the running server does it (see operations.ts), once it seals with
// the same current key (only the key's id is compared, no key is sent).
import { createLogger, syncStdout } from '../logger.ts';
import { withOperations } from './operations.ts';
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
  const keyId = config.encryption.current.id;
  const started = Date.now();
  await withOperations(config, { task: 'rotate-key', logger, migrate: config.migrateOnStart }, async (operations) => {
    const result = await operations.rotateKeys(keyId, batchSize, ({ done, total }) =>
      logger.info({ done, total }, `rotated ${done}/${total}`),
    );
    const seconds = (Date.now() - started) / 1000;
    logger.info(
      {
        ...result,
        seconds,
        perSecond: Math.round(result.done / Math.max(seconds, 0.001)),
        keyId,
        ...(operations.via === 'server' ? { by: 'server' } : {}),
      },
      result.remaining === 0 ? 'rotation complete' : 'rotation incomplete: rows changed meanwhile, run it again',
    );
    if (result.remaining !== 0) process.exitCode = 1;
  });
});
