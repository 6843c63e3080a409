// The executable schema: each module registers its types and fields on the
// builder when imported.
import { builder } from './builder.ts';
import './viewer.ts';
import './account.ts';
import './credential.ts';
import './credential-event.ts';
import './engine-grant.ts';

export const schema = builder.toSchema();
