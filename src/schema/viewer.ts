import type { Viewer } from '../auth/auth.ts';
import { builder } from './builder.ts';

export const ViewerRef = builder.objectRef<Viewer>('Viewer').implement({
  description: 'The signed-in user.',
  fields: (t) => ({
    id: t.exposeID('id'),
    email: t.exposeString('email'),
    name: t.exposeString('name', { nullable: true }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({
    type: ViewerRef,
    nullable: true,
    description: 'The signed-in user; null when not signed in (the one field that needs no session).',
    skipTypeScopes: true,
    resolve: (_root, _args, ctx) => ctx.viewer,
  }),
);
