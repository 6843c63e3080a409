// One resource (a server, a stand-in) for the enclosing describe block or
// file: started in beforeAll, closed in afterAll. The handle forwards to the
// running resource, so tests can hold it from the start.
import { afterAll, beforeAll } from 'vitest';

export function forSuite<T extends { close(): Promise<void> }>(start: () => Promise<T>): T {
  let running: T | undefined;
  beforeAll(async () => {
    running = await start();
  });
  afterAll(async () => {
    await running?.close();
  });
  return new Proxy({} as T, {
    get(_target, property) {
      if (!running) throw new Error('the resource starts in beforeAll: use it inside tests or hooks');
      const value = Reflect.get(running, property);
      return typeof value === 'function' ? value.bind(running) : value;
    },
  });
}
