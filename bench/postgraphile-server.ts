// PostGraphile V5 as a peer in `npm run bench`: what a user
// choosing a GraphQL layer over PostgreSQL RLS would try, on the product's own
// database and seeded data. Amber preset, node:http through grafserv, the
// same pool size as the product, and the same RLS: every operation runs in a
// transaction that PostGraphile opens with its pgSettings
//
//   set_config('role', 'app_user', true), set_config('app.current_user_id', <x-user-id>, true)
//
// PostGraphile has no better-auth: the user id comes from the x-user-id
// request header, unauthenticated (no session lookup, unlike the product and
// the baseline). A bench peer only, never a way into the product's data.
//
// PgIndexBehaviorsPlugin is disabled so that the account -> credentials
// relation (foreign key user_credentials(account_id, user_id), whose columns
// no index starts with) and the isActive condition are exposed; the product
// needs no such index (it reads an account's credentials by account_id,
// which user_credentials_account_id_credential_type_idx serves).
//
// Environment: PORT, DATABASE_URL, POOL_SIZE (default 10).
import http from 'node:http';
import { postgraphile } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/node';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';

const port = Number(process.env.PORT ?? 4200);

const preset: GraphileConfig.Preset = {
  extends: [PostGraphileAmberPreset],
  disablePlugins: ['PgIndexBehaviorsPlugin'],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ['public'],
      poolConfig: { max: Number(process.env.POOL_SIZE ?? 10), idleTimeoutMillis: 30_000 },
      pgSettings: (ctx) => {
        const userId = ctx.node?.req.headers['x-user-id'];
        return { role: 'app_user', 'app.current_user_id': typeof userId === 'string' ? userId : '' };
      },
    }),
  ],
  grafserv: { graphiql: false, watch: false },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = http.createServer();
await serv.addTo(server);
server.listen(port, '127.0.0.1', () => process.stdout.write(`postgraphile listening on http://127.0.0.1:${port}\n`));

const stop = () => {
  server.close(() => void Promise.resolve(pgl.release()).then(() => process.exit(0)));
  server.closeIdleConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
