// The trading account: its type, queries and mutations. Rules live in
// src/domain/account.ts; these resolvers only wire them to the scoped database.
import { queryFromInfo } from '@pothos/plugin-prisma';
import { isRecordNotFound, isUniqueViolation } from '../db/errors.ts';
import { accountNameOrDefault, cleanAccountChanges, cleanAccountName } from '../domain/account.ts';
import { ConflictError, NotFoundError } from '../domain/errors.ts';
import type { UserAccount } from '../generated/prisma/client.ts';
import { builder, viewerId } from './builder.ts';
import { cappedList } from './complexity.ts';

export const AccountRef = builder.prismaObject('UserAccount', {
  name: 'Account',
  description: "The signed-in user's trading account, under which brokerage credentials are stored.",
  // Load only the columns the selection needs (each unselected timestamp
  // still costs a conversion per row).
  select: { id: true },
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    userId: t.exposeID('userId'),
    accountName: t.exposeString('accountName'),
    isActive: t.exposeBoolean('isActive'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  accounts: t.prismaField({
    type: [AccountRef],
    description: "The caller's accounts (at most one, for now).",
    // One account per user: the unique index on user_accounts.user_id.
    complexity: cappedList(1),
    resolve: (query, _root, _args, ctx) =>
      ctx.db.userAccount.findMany({ ...query, where: { userId: viewerId(ctx) }, orderBy: { createdAt: 'asc' } }),
  }),
  account: t.prismaField({
    type: AccountRef,
    nullable: true,
    description: "An account by id; null if it does not exist or is not the caller's.",
    args: { id: t.arg({ type: 'UUID', required: true }) },
    resolve: (query, _root, { id }, ctx) => ctx.db.userAccount.findUnique({ ...query, where: { id } }),
  }),
}));

const CreateAccountInput = builder.inputType('CreateAccountInput', {
  fields: (t) => ({ accountName: t.string({ required: true }) }),
});

const GetOrCreateAccountInput = builder.inputType('GetOrCreateAccountInput', {
  fields: (t) => ({ accountName: t.string() }),
});

const UpdateAccountInput = builder.inputType('UpdateAccountInput', {
  fields: (t) => ({ accountName: t.string(), isActive: t.boolean() }),
});

const GetOrCreateAccountPayload = builder
  .objectRef<{ account: UserAccount; created: boolean }>('GetOrCreateAccountPayload')
  .implement({
    fields: (t) => ({
      account: t.field({ type: AccountRef, resolve: (payload) => payload.account }),
      created: t.exposeBoolean('created', { description: 'True only for the call that created the account.' }),
    }),
  });

builder.mutationFields((t) => ({
  createAccount: t.prismaField({
    type: AccountRef,
    description: "Creates the caller's account; CONFLICT if they already have one.",
    args: { input: t.arg({ type: CreateAccountInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const accountName = cleanAccountName(input.accountName);
      try {
        return await ctx.db.userAccount.create({ ...query, data: { userId: viewerId(ctx), accountName } });
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new ConflictError('You already have an account: use getOrCreateAccount or updateAccount.');
        }
        throw error;
      }
    },
  }),

  getOrCreateAccount: t.field({
    type: GetOrCreateAccountPayload,
    description: `Returns the caller's account, creating it first if needed (name from input, else "Default Alpaca Account"). Idempotent and safe under concurrent calls.`,
    args: { input: t.arg({ type: GetOrCreateAccountInput }) },
    resolve: async (_root, { input }, ctx, info) => {
      const userId = viewerId(ctx);
      const accountName = accountNameOrDefault(input?.accountName);
      // INSERT ... ON CONFLICT DO NOTHING: the unique index on user_id decides
      // the race, so exactly one concurrent call inserts and none fails.
      // Written by hand because Prisma never caches createMany's query plan
      // (its skipDuplicates form): it compiled the query on every call, the
      // bulk of this mutation's CPU. Same statement, same transaction.
      const count = await ctx.db
        .$executeRaw`INSERT INTO user_accounts (user_id, account_name) VALUES (${userId}, ${accountName}) ON CONFLICT (user_id) DO NOTHING`;
      const account = await ctx.db.userAccount.findUniqueOrThrow({
        ...queryFromInfo({ context: ctx, info, path: ['account'] }),
        where: { userId },
      });
      return { account, created: count === 1 };
    },
  }),

  updateAccount: t.prismaField({
    type: AccountRef,
    description: 'Changes the given fields; a field left out or null stays as it is.',
    args: {
      id: t.arg({ type: 'UUID', required: true }),
      input: t.arg({ type: UpdateAccountInput, required: true }),
    },
    resolve: async (query, _root, { id, input }, ctx) => {
      const changes = cleanAccountChanges(input);
      if (Object.keys(changes).length === 0) {
        const account = await ctx.db.userAccount.findUnique({ ...query, where: { id } });
        if (!account) throw new NotFoundError('Account');
        return account;
      }
      try {
        return await ctx.db.userAccount.update({ ...query, where: { id }, data: changes });
      } catch (error) {
        if (isRecordNotFound(error)) throw new NotFoundError('Account');
        throw error;
      }
    },
  }),
}));
