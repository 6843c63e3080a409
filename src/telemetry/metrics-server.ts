// The METRICS_PORT listener: GET /metrics in the Prometheus text format and
// nothing else, apart from the API so that scrapes never share its port,
// its limits or its logs.
import http from 'node:http';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  port: number;
  /** The address bound (`::` or `0.0.0.0` for every interface). */
  address: string;
  close(): Promise<void>;
}

export async function startMetricsServer(registry: Registry, host: string | undefined, port: number) {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? '' : body),
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address : { port, address: host ?? '::' };
  return {
    port: bound.port,
    address: bound.address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  } satisfies MetricsServer;
}
