// Brokerage credentials: the type, Account.credentials, and the lifecycle
// mutations. Secrets go in and are sealed before any query sees them; they
// never come out (only a masked hint of the API key does).

import { resealSecrets, type SealedSecrets } from '../crypto/credential-sealing.ts';
import { isForeignKeyViolation, isRecordNotFound } from '../db/errors.ts';
import { apiKeyHint, cleanCredentialChanges, cleanNewCredential, displayNickname } from '../domain/credential.ts';
import { NotFoundError } from '../domain/errors.ts';
import { newCredentialRow } from '../services/credential-rows.ts';
import { AccountRef } from './account.ts';
import { builder, viewerId } from './builder.ts';

export const CredentialRef = builder.prismaObject('Credential', {
  description: 'A stored brokerage credential. Its secrets are write-only: only a masked hint of the API key is shown.',
  // Load only what the selection needs: never the ciphertexts. nickname's
  // columns are always loaded: a field-level select would make plugin-prisma
  // wrap the field and map a selection path for every row (issue 13).
  select: { id: true, nickname: true, credentialType: true },
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    accountId: t.expose('accountId', { type: 'UUID' }),
    account: t.relation('account'),
    credentialType: t.exposeString('credentialType'),
    nickname: t.string({
      description: 'The nickname given, or credentialType when none was.',
      resolve: (c) => displayNickname(c.nickname, c.credentialType),
    }),
    apiKeyHint: t.exposeString('apiKeyHint', { description: 'The API key masked: at most its last 4 characters.' }),
    isActive: t.exposeBoolean('isActive'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.prismaObjectField(AccountRef, 'credentials', (t) =>
  t.relation('credentials', {
    description: 'The credentials stored under this account, oldest first; active ones only unless includeInactive.',
    args: {
      credentialType: t.arg.string({ description: 'Only credentials of this type (e.g. "alpaca").' }),
      includeInactive: t.arg.boolean({ defaultValue: false }),
    },
    query: ({ credentialType, includeInactive }) => ({
      where: {
        ...(credentialType != null ? { credentialType } : {}),
        ...(includeInactive ? {} : { isActive: true }),
      },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    }),
  }),
);

builder.queryField('credential', (t) =>
  t.prismaField({
    type: CredentialRef,
    nullable: true,
    description: "A credential by id; null if it does not exist or is not the caller's.",
    args: { id: t.arg({ type: 'UUID', required: true }) },
    resolve: (query, _root, { id }, ctx) => ctx.db.credential.findUnique({ ...query, where: { id } }),
  }),
);

const StoreCredentialInput = builder.inputType('StoreCredentialInput', {
  fields: (t) => ({
    accountId: t.field({ type: 'UUID', required: true }),
    credentialType: t.string({ required: true, description: 'Lower-case identifier, e.g. "alpaca".' }),
    apiKey: t.string({ required: true }),
    secretKey: t.string({ required: true }),
    nickname: t.string({ description: 'Absent, null, empty or blank: no nickname (credentialType is shown).' }),
  }),
});

const UpdateCredentialInput = builder.inputType('UpdateCredentialInput', {
  fields: (t) => ({
    nickname: t.string({ description: 'Empty or blank resets to the default (credentialType).' }),
    apiKey: t.string(),
    secretKey: t.string(),
    isActive: t.boolean(),
  }),
});

const SEALED_COLUMNS = {
  id: true,
  userId: true,
  keyId: true,
  apiKeyCiphertext: true,
  secretKeyCiphertext: true,
} as const;

builder.mutationFields((t) => ({
  storeCredential: t.prismaField({
    type: CredentialRef,
    description: "Stores a credential under one of the caller's accounts. Several of the same type are allowed.",
    args: { input: t.arg({ type: StoreCredentialInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const row = newCredentialRow(ctx.keyring, viewerId(ctx), cleanNewCredential(input));
      try {
        return await ctx.db.credential.create({ ...query, data: row });
      } catch (error) {
        // The composite key (account_id, user_id) refuses an account that is
        // absent or someone else's alike.
        if (isForeignKeyViolation(error)) throw new NotFoundError('Account');
        throw error;
      }
    },
  }),

  updateCredential: t.prismaField({
    type: CredentialRef,
    description:
      'Changes the given fields; a field left out or null stays as it is. New secrets are re-encrypted and apiKeyHint follows.',
    args: {
      id: t.arg({ type: 'UUID', required: true }),
      input: t.arg({ type: UpdateCredentialInput, required: true }),
    },
    resolve: async (query, _root, { id, input }, ctx) => {
      const { apiKey, secretKey, ...plain } = cleanCredentialChanges(input);
      let resealed: (SealedSecrets & { apiKeyHint?: string }) | undefined;
      if (apiKey !== undefined || secretKey !== undefined) {
        const row = await ctx.db.credential.findUnique({ where: { id }, select: SEALED_COLUMNS });
        if (!row) throw new NotFoundError('Credential');
        resealed = {
          ...resealSecrets(ctx.keyring, row, row, { apiKey, secretKey }),
          ...(apiKey !== undefined ? { apiKeyHint: apiKeyHint(apiKey) } : {}),
        };
      }
      const data = { ...plain, ...resealed };
      if (Object.keys(data).length === 0) {
        const unchanged = await ctx.db.credential.findUnique({ ...query, where: { id } });
        if (!unchanged) throw new NotFoundError('Credential');
        return unchanged;
      }
      try {
        return await ctx.db.credential.update({ ...query, where: { id }, data });
      } catch (error) {
        if (isRecordNotFound(error)) throw new NotFoundError('Credential');
        throw error;
      }
    },
  }),

  deleteCredential: t.field({
    type: 'UUID',
    description: 'Deletes a credential and returns its id; the id is NOT_FOUND from then on.',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    resolve: async (_root, { id }, ctx) => {
      try {
        await ctx.db.credential.delete({ where: { id }, select: { id: true } });
        return id;
      } catch (error) {
        if (isRecordNotFound(error)) throw new NotFoundError('Credential');
        throw error;
      }
    },
  }),
}));
