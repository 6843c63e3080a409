// The development secrets file: a server started without ENCRYPTION_KEY or
// BETTER_AUTH_SECRET outside production generates them once into
// DATA_DIR/dev-secrets.json, so data and sessions survive restarts. Command-line
// tasks never write it (see SecretsSource).
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { invalid } from './errors.ts';

/** Secrets a development start may generate; production must be given them. */
export interface GeneratedSecrets {
  encryptionKey?: string;
  authSecret?: string;
}

const DEV_SECRETS_FILE = 'dev-secrets.json';

const SECRET_VARIABLES: Record<keyof GeneratedSecrets, string> = {
  encryptionKey: 'ENCRYPTION_KEY',
  authSecret: 'BETTER_AUTH_SECRET',
};

/**
 * Where a process gets the secrets it was not given:
 * - 'server': in development, generated once into DATA_DIR with a warning
 *   (data and sessions survive restarts); production requires both.
 * - 'keys' (rotate-key): the encryption key the servers use, given or, on the
 *   embedded database only, the DATA_DIR's development file; never generated,
 *   written or warned about. The auth secret is not used.
 * - 'none' (migrate, engine-client): the task seals and signs nothing; what
 *   is missing is a throwaway random value, never written.
 */
export type SecretsSource = 'server' | 'keys' | 'none';

async function readDevSecrets(file: string): Promise<GeneratedSecrets> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as GeneratedSecrets;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw invalid([{ variable: 'DATA_DIR', message: `cannot read ${file}: ${(error as Error).message}` }]);
  }
}

const generate = (needed: (keyof GeneratedSecrets)[], into: GeneratedSecrets): GeneratedSecrets => {
  for (const k of needed.filter((k) => !into[k])) into[k] = randomBytes(32).toString('base64');
  return into;
};

async function loadOrCreateDevSecrets(dataDir: string, needed: (keyof GeneratedSecrets)[]): Promise<GeneratedSecrets> {
  const file = path.join(dataDir, DEV_SECRETS_FILE);
  const stored = await readDevSecrets(file);
  if (needed.every((k) => stored[k])) return stored;
  const contents = (secrets: GeneratedSecrets) => `${JSON.stringify(secrets, null, 2)}\n`;
  if (Object.keys(stored).length === 0) {
    // Created exclusively: of two processes starting at once on a fresh
    // DATA_DIR, one creates the file and the other reads what it wrote, so
    // both use the same secrets. Written whole under a name of its own, then
    // linked into place (link refuses an existing name, as 'wx' does, but a
    // reader never sees the file before its content).
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const fresh = generate(needed, {});
    const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(draft, contents(fresh), { mode: 0o600, flag: 'wx' });
    try {
      await link(draft, file);
      return fresh;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const written = await readDevSecrets(file);
      if (needed.every((k) => written[k])) return written;
      Object.assign(stored, written);
    } finally {
      await rm(draft, { force: true });
    }
  }
  // A file from a start that was given one of the two: add the other.
  const completed = generate(needed, stored);
  await writeFile(file, contents(completed), { mode: 0o600 });
  return completed;
}

/** The secrets `needed` (not given in the environment), from where `source` says. */
export async function missingSecrets(
  source: SecretsSource,
  needed: (keyof GeneratedSecrets)[],
  dataDir: string,
  embedded: boolean,
  warn: (message: string) => void,
): Promise<GeneratedSecrets> {
  if (needed.length === 0) return {};
  if (source === 'server') {
    const generated = await loadOrCreateDevSecrets(dataDir, needed);
    warn(
      `${needed.map((k) => SECRET_VARIABLES[k]).join(' and ')} not set: using a development value generated once into ` +
        `${path.join(dataDir, DEV_SECRETS_FILE)}. Set them explicitly in production.`,
    );
    return generated;
  }
  const throwaway = () => randomBytes(32).toString('base64');
  const secrets: GeneratedSecrets = Object.fromEntries(needed.map((k) => [k, throwaway()]));
  if (source === 'keys' && needed.includes('encryptionKey')) {
    const stored = embedded ? await readDevSecrets(path.join(dataDir, DEV_SECRETS_FILE)) : {};
    if (!stored.encryptionKey) {
      throw invalid([
        {
          variable: 'ENCRYPTION_KEY',
          message: embedded
            ? `not set, and ${path.join(dataDir, DEV_SECRETS_FILE)} holds none: set it (and ENCRYPTION_KEYS) as the server has them`
            : 'not set: set it (and ENCRYPTION_KEYS) as the servers have them',
        },
      ]);
    }
    secrets.encryptionKey = stored.encryptionKey;
  }
  return secrets;
}
