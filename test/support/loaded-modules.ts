// Preload (node --import) that records the URL of every module the process
// resolves, ESM and CommonJS alike, and writes them to LOADED_MODULES_FILE on
// exit: how a test proves that something (OpenTelemetry, prom-client) is
// never loaded when its feature is off.
import { writeFileSync } from 'node:fs';
import module from 'node:module';

const file = process.env.LOADED_MODULES_FILE;
if (file) {
  const seen = new Set<string>();
  module.registerHooks({
    resolve(specifier, context, nextResolve) {
      const result = nextResolve(specifier, context);
      seen.add(result.url);
      return result;
    },
  });
  process.on('exit', () => writeFileSync(file, [...seen].join('\n')));
}
