// A TCP proxy in front of the test PostgreSQL server, to break one
// connection's network on purpose: refuse new connections (a database that
// is down), or freeze the ones it carries (a silent network: nothing
// arrives, nothing fails).
import net from 'node:net';

export interface TcpProxy {
  /** `url` (a database on the upstream server) rewritten to go through the proxy. */
  through(url: string): string;
  /** The local ports of the proxy's own connections upstream (pg_stat_activity.client_port). */
  upstreamPorts(): number[];
  /** Refuses new connections (closes them at once) until accept(); those open stay. */
  refuse(): void;
  accept(): void;
  /** Holds every byte in both directions, on every connection, until thaw() (which delivers them). */
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export async function startTcpProxy(upstreamUrl: string): Promise<TcpProxy> {
  const target = new URL(upstreamUrl);
  const host = target.hostname;
  const port = Number(target.port || 5432);
  const pairs = new Set<Pair>();
  let refusing = false;
  let frozen = false;
  const held: (() => void)[] = [];

  const forward = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (frozen) held.push(() => to.write(chunk));
      else to.write(chunk);
    });
  };

  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, host);
    const pair = { client, upstream };
    pairs.add(pair);
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: listening } = server.address() as net.AddressInfo;

  return {
    through: (url) => {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(listening);
      return u.toString();
    },
    upstreamPorts: () => [...pairs].map((p) => p.upstream.localPort).filter((p): p is number => p !== undefined),
    refuse: () => {
      refusing = true;
    },
    accept: () => {
      refusing = false;
    },
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      for (const deliver of held.splice(0)) deliver();
    },
    close: async () => {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
