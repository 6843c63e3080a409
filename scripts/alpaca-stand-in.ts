// `npm run alpaca-stand-in`: a development stand-in for Alpaca, NOT Alpaca.
// It runs the test suite's stand-in (test/support/alpaca-stand-in.ts) as
// three local servers: paper trading on port N, live trading on N+1, market
// data on N+2 (N is ALPACA_STAND_IN_PORT, 4100 by default; 0 picks free
// ports). It prints the ALPACA_PAPER_URL, ALPACA_LIVE_URL and ALPACA_DATA_URL
// to start the server with, and a demo key pair that paper accepts (its
// account holds 10 AAPL), then one line per request it answers. Nothing it
// does reaches a market: orders are accepted and never fill, prices are
// fixed. It exists so that the engine walk-through of
// docs/getting-started.md runs offline. Stops on Ctrl-C (SIGINT) or SIGTERM.
import { type SeenRequest, startAlpacaStandIns } from '../test/support/alpaca-stand-in.ts';

const DEMO_KEYS = { apiKey: 'PKDEMOSTANDIN0000001', secretKey: 'demo-stand-in-secret' };
const DEFAULT_PORT = 4100;

/** ALPACA_STAND_IN_PORT, or the default; a bad value stops here with one line. */
function port(): number {
  const text = process.env.ALPACA_STAND_IN_PORT || String(DEFAULT_PORT);
  const value = Number(text);
  if (!/^\d+$/.test(text) || value > 65533) {
    process.stderr.write(
      `alpaca-stand-in: ALPACA_STAND_IN_PORT must be a port from 0 to 65533 (paper on it, live and market data on the next two; 0: free ports), not ${JSON.stringify(text)}\n`,
    );
    process.exit(78);
  }
  return value;
}

const base = port();
const at = (offset: number) => (base === 0 ? 0 : base + offset);
const standIns = await startAlpacaStandIns({ paper: at(0), live: at(1), data: at(2) }).catch((error: Error) => {
  process.stderr.write(
    `alpaca-stand-in: cannot listen (${error.message}); choose others with ALPACA_STAND_IN_PORT=N\n`,
  );
  process.exit(1);
});
standIns.paper.setKey(DEMO_KEYS.apiKey, {
  kind: 'account',
  secretKey: DEMO_KEYS.secretKey,
  accountNumber: 'PA3DEMO00001',
  positions: [{ symbol: 'AAPL', qty: 10 }],
});

const lines = [
  'Alpaca stand-in for development: NOT Alpaca, nothing reaches a market.',
  'Start the server with:',
  ...Object.entries(standIns.env).map(([name, url]) => `  ${name}=${url}`),
  `Demo paper keys: apiKey ${DEMO_KEYS.apiKey}  secretKey ${DEMO_KEYS.secretKey}`,
  '',
];
process.stdout.write(`${lines.join('\n')}\n`);

// One line per answered request, so the walk-through shows what reached the "broker".
const printed = new Set<SeenRequest>();
const named = [
  ['paper', standIns.paper.requests],
  ['live', standIns.live.requests],
  ['data', standIns.data.requests],
] as const;
const report = setInterval(() => {
  for (const [name, requests] of named) {
    for (const seen of requests) {
      if (printed.has(seen) || !seen.response) continue;
      printed.add(seen);
      const query = seen.query ? `?${seen.query}` : '';
      process.stdout.write(`${name} ${seen.method} ${seen.path}${query} -> ${seen.response.status}\n`);
    }
  }
}, 200);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    clearInterval(report);
    // Connections a client keeps open must not hold the exit up for long.
    setTimeout(() => process.exit(0), 2000).unref();
    void standIns.close().then(() => process.exit(0));
  });
}
