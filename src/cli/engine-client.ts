// `npm run engine-client -- create NAME | list | revoke CLIENT_ID`: registers,
// lists and revokes trading-engine clients (docs/engines.md), with the
// server's configuration (DATABASE_URL, or the embedded PGlite in DATA_DIR:
// through the running server when one has it open, see operations.ts). Prints
// one line of JSON on stdout: `create` {"clientId", "clientSecret", "name"}
// (the secret is shown only then, and stored only as a hash), `list` an array
// of the clients (id, name, createdAt, revokedAt; no secret), `revoke` the
// revoked client, whose tokens stop working at once, with grantsRevoked (its
// grants, revoked with it). (`npm run --silent` leaves out npm's own banner
// lines.)
import { createLogger } from '../logger.ts';
import { withOperations } from './operations.ts';
import { parseTaskArgs, runTask, UsageError } from './task.ts';

const USAGE = 'usage: npm run engine-client -- create NAME | list | revoke CLIENT_ID';

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

// Client secrets are hashed (sha256), not sealed or signed: no ENCRYPTION_KEY or BETTER_AUTH_SECRET needed.
const parse = () => {
  const { positionals } = parseTaskArgs({ allowPositionals: true, strict: true }, USAGE);
  const [command, argument, ...extra] = positionals;
  const needsArgument = command === 'create' || command === 'revoke';
  const valid =
    (needsArgument ? argument !== undefined : command === 'list' && argument === undefined) && !extra.length;
  if (!valid) throw new UsageError(USAGE);
  return { command, argument };
};

await runTask('engine-client', 'none', parse, async (config, { command, argument }) => {
  // Logs go to stderr: stdout carries the JSON only.
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr);
  await withOperations(
    config,
    { task: 'engine-client', logger, migrate: config.migrateOnStart },
    async (operations) => {
      if (command === 'create') {
        print(await operations.createEngineClient(argument as string));
      } else if (command === 'list') {
        print(await operations.listEngineClients());
      } else {
        const revoked = await operations.revokeEngineClient(argument as string);
        if (!revoked) {
          process.stderr.write(`no engine client with id ${JSON.stringify(argument)}\n`);
          process.exitCode = 1;
        } else print(revoked);
      }
    },
  );
});
