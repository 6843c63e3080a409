// Where the running server's admin endpoint listens: DATA_DIR/admin.sock, a
// Unix socket only DATA_DIR's owner can reach (mode 0600; Linux enforces it
// on connect). A socket's path is limited to 107 bytes (sun_path, with its
// NUL): a longer one is reached through /proc/self/fd/<fd of DATA_DIR>/,
// an alias Linux resolves to the same file.
import { closeSync, constants, openSync } from 'node:fs';
import path from 'node:path';

export const ADMIN_SOCKET = 'admin.sock';
const MAX_SOCKET_PATH_BYTES = 107;

export interface SocketPath {
  /** The path to listen on or connect to (an alias when the real one is too long). */
  path: string;
  /** The real path, for messages. */
  shown: string;
  /** Releases what the alias holds open (nothing for a short path). */
  close(): void;
}

export function adminSocketPath(dataDir: string): SocketPath {
  const shown = path.join(path.resolve(dataDir), ADMIN_SOCKET);
  if (Buffer.byteLength(shown) <= MAX_SOCKET_PATH_BYTES) return { path: shown, shown, close: () => {} };
  if (process.platform !== 'linux') {
    throw new Error(
      `the admin socket's path ${shown} is longer than ${MAX_SOCKET_PATH_BYTES} bytes: use a shorter DATA_DIR`,
    );
  }
  const fd = openSync(path.dirname(shown), constants.O_RDONLY | constants.O_DIRECTORY);
  let open = true;
  return {
    path: `/proc/self/fd/${fd}/${ADMIN_SOCKET}`,
    shown,
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
