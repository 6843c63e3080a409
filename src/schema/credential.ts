// Brokerage credentials: the type, Account.credentials, and the lifecycle
// mutations. Secrets go in and are sealed before any query sees them; they
// never come out (only a masked hint of the API key does).

import { resealSecrets, type SealedSecrets } from '../crypto/credential-sealing.ts';
import { isCredentialCapReached, isForeignKeyViolation, isRecordNotFound } from '../db/errors.ts';
import { apiKeyHint, cleanCredentialChanges, cleanNewCredential, displayNickname } from '../domain/credential.ts';
import { updateEvent } from '../domain/credential-events.ts';
import { LimitExceededError, NotFoundError } from '../domain/errors.ts';
import { UNVERIFIED, verificationColumns, verificationFromColumns } from '../domain/verification.ts';
import { OWN_TRANSACTION } from '../graphql/rls-transaction.ts';
import { SECRET_INPUT } from '../graphql/secret-scrubbing.ts';
import { recordCredentialEvent } from '../services/credential-events.ts';
import { lockCredentialForUpdate, newCredentialRow } from '../services/credential-rows.ts';
import { verifyCredential } from '../services/credential-verification.ts';
import { AccountRef } from './account.ts';
import { builder, viewerId } from './builder.ts';
import { cappedList } from './complexity.ts';
import { CredentialVerificationRef } from './verification.ts';

export const CredentialRef = builder.prismaObject('Credential', {
  description: 'A stored brokerage credential. Its secrets are write-only: only a masked hint of the API key is shown.',
  // Load only what the selection needs: never the ciphertexts. nickname's
  // columns are always loaded: a field-level select would make plugin-prisma
  // wrap the field and map a selection path for every row.
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
    verification: t.field({
      type: CredentialVerificationRef,
      description: 'What the last check at the broker found (verifyCredential); UNVERIFIED until then.',
      select: {
        verificationStatus: true,
        verificationCheckedAt: true,
        verificationEnvironment: true,
        brokerAccountNumber: true,
        brokerAccountStatus: true,
        verificationMessage: true,
      },
      resolve: (c) => verificationFromColumns(c),
    }),
  }),
});

builder.prismaObjectField(AccountRef, 'credentials', (t) =>
  t.relation('credentials', {
    description: 'The credentials stored under this account, oldest first; active ones only unless includeInactive.',
    args: {
      credentialType: t.arg.string({ description: 'Only credentials of this type (e.g. "alpaca").' }),
      includeInactive: t.arg.boolean({ defaultValue: false }),
    },
    // At most MAX_CREDENTIALS_PER_ACCOUNT (enforced by the database).
    complexity: (_args, ctx) => cappedList(ctx.limits.credentialsPerAccount),
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
    // SECRET_INPUT: kept out of error messages (src/graphql/secret-scrubbing.ts).
    apiKey: t.string({ required: true, extensions: SECRET_INPUT }),
    secretKey: t.string({ required: true, extensions: SECRET_INPUT }),
    nickname: t.string({ description: 'Absent, null, empty or blank: no nickname (credentialType is shown).' }),
  }),
});

const UpdateCredentialInput = builder.inputType('UpdateCredentialInput', {
  fields: (t) => ({
    nickname: t.string({ description: 'Empty or blank resets to the default (credentialType).' }),
    apiKey: t.string({ extensions: SECRET_INPUT }),
    secretKey: t.string({ extensions: SECRET_INPUT }),
    isActive: t.boolean(),
  }),
});

builder.mutationFields((t) => ({
  storeCredential: t.prismaField({
    type: CredentialRef,
    description:
      "Stores a credential under one of the caller's accounts. Several of the same type are allowed, up to " +
      'MAX_CREDENTIALS_PER_ACCOUNT per account (then LIMIT_EXCEEDED).',
    args: { input: t.arg({ type: StoreCredentialInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const userId = viewerId(ctx);
      const row = newCredentialRow(ctx.keyring, userId, cleanNewCredential(input));
      let stored: Awaited<ReturnType<typeof ctx.db.credential.create>>;
      try {
        stored = await ctx.db.credential.create({ ...query, data: row });
      } catch (error) {
        // The composite key (account_id, user_id) refuses an account that is
        // absent or someone else's alike.
        if (isForeignKeyViolation(error)) throw new NotFoundError('Account');
        // The database's count, under a lock on the account: concurrent
        // stores cannot both pass it (migration 20261202000200_credential_cap).
        if (isCredentialCapReached(error)) {
          const cap = ctx.limits.credentialsPerAccount;
          throw new LimitExceededError(
            'MAX_CREDENTIALS_PER_ACCOUNT',
            `An account holds at most ${cap} credentials: delete one before storing another.`,
          );
        }
        throw error;
      }
      await recordCredentialEvent(ctx.db, { userId, credentialId: row.id, action: 'STORED', request: ctx.origin });
      return stored;
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
      const changes = cleanCredentialChanges(input);
      // Locked until the operation commits, so concurrent updates see each
      // other's result and each event names what really changed.
      const current = await lockCredentialForUpdate(ctx.db, id);
      if (!current) throw new NotFoundError('Credential');
      const event = updateEvent(current, changes);
      // Nothing changes: no write, no event.
      if (!event) {
        const unchanged = await ctx.db.credential.findUnique({ ...query, where: { id } });
        if (!unchanged) throw new NotFoundError('Credential');
        return unchanged;
      }
      const { apiKey, secretKey, ...plain } = changes;
      let resealed:
        | (SealedSecrets & { apiKeyHint?: string; secretsVersion: number; verifiedEnvironment?: null })
        | undefined;
      if (apiKey !== undefined || secretKey !== undefined) {
        resealed = {
          // The next secretsVersion (the row is locked), which the new ciphertexts are bound to.
          ...resealSecrets(ctx.keyring, current, current, { apiKey, secretKey }),
          ...(apiKey !== undefined ? { apiKeyHint: apiKeyHint(apiKey) } : {}),
          // New keys have not been checked: back to UNVERIFIED, and a check of
          // the old ones still in flight will not write (its version is stale).
          ...verificationColumns(UNVERIFIED),
          // Engines stop until the new keys are verified (docs/engines.md).
          verifiedEnvironment: null,
        };
      }
      const updated = await ctx.db.credential.update({ ...query, where: { id }, data: { ...plain, ...resealed } });
      await recordCredentialEvent(ctx.db, { userId: current.userId, credentialId: id, ...event, request: ctx.origin });
      return updated;
    },
  }),

  deleteCredential: t.field({
    type: 'UUID',
    description: 'Deletes a credential and returns its id; the id is NOT_FOUND from then on.',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    resolve: async (_root, { id }, ctx) => {
      try {
        await ctx.db.credential.delete({ where: { id }, select: { id: true } });
      } catch (error) {
        if (isRecordNotFound(error)) throw new NotFoundError('Credential');
        throw error;
      }
      await recordCredentialEvent(ctx.db, {
        userId: viewerId(ctx),
        credentialId: id,
        action: 'DELETED',
        request: ctx.origin,
      });
      return id;
    },
  }),

  // Runs outside the per-operation transaction (OWN_TRANSACTION, see
  // src/graphql/rls-transaction.ts); the steps are in
  // src/services/credential-verification.ts.
  verifyCredential: t.prismaField({
    type: CredentialRef,
    description:
      'Checks the stored keys at the broker (paper or live), stores the result on the credential and returns it. ' +
      'At most 5 per credential and 30 per user per minute. Must be the only field of its operation.',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    extensions: { [OWN_TRANSACTION]: true },
    resolve: async (query, _root, { id }, ctx) => {
      if (!ctx.steps) throw new Error('verifyCredential ran inside the operation transaction');
      const deps = { ...ctx.verification, keyring: ctx.keyring };
      const db = await verifyCredential(deps, ctx.steps, viewerId(ctx), id, ctx.origin);
      // As it is now: another request may have changed its keys (then the
      // result was not written) or deleted it meanwhile.
      const credential = await db.credential.findUnique({ ...query, where: { id } });
      if (!credential) throw new NotFoundError('Credential');
      return credential;
    },
  }),
}));
