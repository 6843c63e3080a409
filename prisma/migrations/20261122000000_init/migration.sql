-- Initial schema: better-auth's tables, the user-data tables with forced
-- row-level security, and the request role. Written by hand (RLS, roles and
-- policies are outside Prisma's schema language); names follow Prisma's
-- conventions so `prisma migrate diff` against schema.prisma stays empty.

-- ---------------------------------------------------------------------------
-- The request role. Roles are cluster-wide, so several databases on one server
-- (tests, staging) share it: create it only when missing. NOLOGIN: it is only
-- ever entered with SET LOCAL ROLE from the server's own connection, which must
-- be a member of it. NOBYPASSRLS: policies always apply to it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_user') THEN
    BEGIN
      CREATE ROLE app_user NOLOGIN NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- created meanwhile by a migration of another database
    END;
  END IF;
  IF NOT pg_has_role(current_user, 'app_user', 'MEMBER') THEN
    GRANT app_user TO CURRENT_USER;
  END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- better-auth

CREATE TABLE "auth_users" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "email_verified" BOOLEAN NOT NULL DEFAULT false,
    "image" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "auth_users_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "auth_users_email_key" ON "auth_users"("email");

CREATE TABLE "auth_sessions" (
    "id" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "token" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "ip_address" TEXT,
    "user_agent" TEXT,
    "user_id" TEXT NOT NULL,
    CONSTRAINT "auth_sessions_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "auth_sessions_token_key" ON "auth_sessions"("token");
CREATE INDEX "auth_sessions_user_id_idx" ON "auth_sessions"("user_id");
ALTER TABLE "auth_sessions" ADD CONSTRAINT "auth_sessions_user_id_fkey"
    FOREIGN KEY ("user_id") REFERENCES "auth_users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "auth_accounts" (
    "id" TEXT NOT NULL,
    "account_id" TEXT NOT NULL,
    "provider_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "access_token" TEXT,
    "refresh_token" TEXT,
    "id_token" TEXT,
    "access_token_expires_at" TIMESTAMPTZ(3),
    "refresh_token_expires_at" TIMESTAMPTZ(3),
    "scope" TEXT,
    "password" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "auth_accounts_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "auth_accounts_user_id_idx" ON "auth_accounts"("user_id");
ALTER TABLE "auth_accounts" ADD CONSTRAINT "auth_accounts_user_id_fkey"
    FOREIGN KEY ("user_id") REFERENCES "auth_users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "auth_verifications" (
    "id" TEXT NOT NULL,
    "identifier" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "auth_verifications_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "auth_verifications_identifier_idx" ON "auth_verifications"("identifier");

-- Failed sign-in/sign-up counters (rate-limiter-flexible's Prisma store).
CREATE TABLE "auth_rate_limits" (
    "key" TEXT NOT NULL,
    "points" INTEGER NOT NULL,
    "expire" TIMESTAMPTZ(3),
    CONSTRAINT "auth_rate_limits_pkey" PRIMARY KEY ("key")
);

-- ---------------------------------------------------------------------------
-- User data

CREATE TABLE "user_accounts" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" TEXT NOT NULL,
    "account_name" VARCHAR(100) NOT NULL,
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "user_accounts_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "user_accounts_user_id_key" ON "user_accounts"("user_id");
CREATE UNIQUE INDEX "user_accounts_id_user_id_key" ON "user_accounts"("id", "user_id");
ALTER TABLE "user_accounts" ADD CONSTRAINT "user_accounts_user_id_fkey"
    FOREIGN KEY ("user_id") REFERENCES "auth_users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "user_credentials" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "account_id" UUID NOT NULL,
    "user_id" TEXT NOT NULL,
    "credential_type" VARCHAR(32) NOT NULL,
    "nickname" VARCHAR(100),
    "api_key_ciphertext" BYTEA NOT NULL,
    "secret_key_ciphertext" BYTEA NOT NULL,
    "key_id" VARCHAR(64) NOT NULL,
    "api_key_hint" VARCHAR(16) NOT NULL,
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "user_credentials_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "user_credentials_account_id_credential_type_idx" ON "user_credentials"("account_id", "credential_type");
CREATE INDEX "user_credentials_user_id_idx" ON "user_credentials"("user_id");
CREATE INDEX "user_credentials_key_id_idx" ON "user_credentials"("key_id");
-- Composite key: a credential's owner is always its account's owner.
ALTER TABLE "user_credentials" ADD CONSTRAINT "user_credentials_account_id_user_id_fkey"
    FOREIGN KEY ("account_id", "user_id") REFERENCES "user_accounts"("id", "user_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- ---------------------------------------------------------------------------
-- Row-level security. FORCE makes the policies apply to the table owner too,
-- so only a superuser or a BYPASSRLS role sees past them. The policies are
-- written TO app_user: any other role matches no policy and sees no rows.
-- current_setting(..., true) yields NULL (or '' once set and reset) when the
-- setting is missing; NULLIF turns both into NULL, and user_id = NULL is never
-- true: a missing setting means "no rows", never "all rows".

ALTER TABLE "user_accounts" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "user_accounts" FORCE ROW LEVEL SECURITY;
CREATE POLICY "user_accounts_select" ON "user_accounts" FOR SELECT TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "user_accounts_insert" ON "user_accounts" FOR INSERT TO app_user
    WITH CHECK ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "user_accounts_update" ON "user_accounts" FOR UPDATE TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''))
    WITH CHECK ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "user_accounts_delete" ON "user_accounts" FOR DELETE TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));

ALTER TABLE "user_credentials" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "user_credentials" FORCE ROW LEVEL SECURITY;
CREATE POLICY "user_credentials_select" ON "user_credentials" FOR SELECT TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "user_credentials_insert" ON "user_credentials" FOR INSERT TO app_user
    WITH CHECK ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "user_credentials_update" ON "user_credentials" FOR UPDATE TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''))
    WITH CHECK ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "user_credentials_delete" ON "user_credentials" FOR DELETE TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));

-- ---------------------------------------------------------------------------
-- Grants: the request role gets the user-data tables and nothing else (no
-- better-auth table: sessions are resolved before the request transaction).
-- Owner and id columns are never updatable by it.

GRANT USAGE ON SCHEMA public TO app_user;
GRANT SELECT, INSERT, DELETE ON "user_accounts", "user_credentials" TO app_user;
GRANT UPDATE ("account_name", "is_active", "updated_at") ON "user_accounts" TO app_user;
GRANT UPDATE ("nickname", "api_key_ciphertext", "secret_key_ciphertext", "key_id", "api_key_hint", "is_active", "updated_at")
    ON "user_credentials" TO app_user;
