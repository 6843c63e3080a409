// How configuration problems are reported: one error, one line per problem,
// each naming its variable. Start-up checks (src/startup, src/db) report what
// they find about a variable the same way.

/**
 * A configuration value that is invalid, unusable or inconsistent with the
 * database: the process stops before it listens, exit status 78 (EX_CONFIG),
 * printing the message (one line per problem, each naming the variable).
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** One line per problem, each naming its variable: `Invalid configuration: PORT: must be a whole number`. */
export function invalid(problems: { variable: string; message: string }[]): ConfigError {
  return new ConfigError(problems.map((p) => `Invalid configuration: ${p.variable}: ${p.message}`).join('\n'));
}
