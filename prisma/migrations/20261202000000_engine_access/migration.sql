-- Trading-engine access (docs/engines.md): engine clients and their
-- tokens (the operator's, not user data), grants of a credential to a client
-- (user data), what an engine request needs of a credential, and the new
-- audit actions.

-- ---------------------------------------------------------------------------
-- Engine clients and access tokens. Not user data (like better-auth's
-- tables): no RLS; the server's own connection issues and checks tokens. The
-- client secret and the tokens are 256-bit random values stored only as their
-- SHA-256 (hex): a dump holds nothing that authenticates.

CREATE TABLE "engine_clients" (
    "id" VARCHAR(64) NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "secret_hash" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),
    CONSTRAINT "engine_clients_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "engine_tokens" (
    "token_hash" VARCHAR(64) NOT NULL,
    "client_id" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "engine_tokens_pkey" PRIMARY KEY ("token_hash")
);
CREATE INDEX "engine_tokens_client_id_expires_at_idx" ON "engine_tokens"("client_id", "expires_at");
ALTER TABLE "engine_tokens" ADD CONSTRAINT "engine_tokens_client_id_fkey"
    FOREIGN KEY ("client_id") REFERENCES "engine_clients"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- The request role lists clients for users to choose from (engineClients,
-- EngineGrant.client): the non-secret columns only, and no token at all.
GRANT SELECT ("id", "name", "created_at", "revoked_at") ON "engine_clients" TO app_user;

-- ---------------------------------------------------------------------------
-- Grants: a user lets a client use one credential with some scopes. User data.
-- The composite key to the credential makes a grant's owner its credential's
-- owner (the database refuses anything else); a grant goes with its
-- credential. Revocation and expiry are kept, never deleted by the API:
-- Credential.engineGrants shows the history.

CREATE UNIQUE INDEX "user_credentials_id_user_id_key" ON "user_credentials"("id", "user_id");

CREATE TABLE "engine_grants" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" TEXT NOT NULL,
    "credential_id" UUID NOT NULL,
    "client_id" VARCHAR(64) NOT NULL,
    "scopes" TEXT[] NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),
    CONSTRAINT "engine_grants_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "engine_grants_scopes_check"
        CHECK (cardinality("scopes") >= 1 AND "scopes" <@ ARRAY['READ', 'TRADE']::TEXT[])
);
CREATE INDEX "engine_grants_credential_id_created_at_idx" ON "engine_grants"("credential_id", "created_at");
CREATE INDEX "engine_grants_client_id_credential_id_idx" ON "engine_grants"("client_id", "credential_id");
CREATE INDEX "engine_grants_user_id_idx" ON "engine_grants"("user_id");
ALTER TABLE "engine_grants" ADD CONSTRAINT "engine_grants_credential_id_user_id_fkey"
    FOREIGN KEY ("credential_id", "user_id") REFERENCES "user_credentials"("id", "user_id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "engine_grants" ADD CONSTRAINT "engine_grants_client_id_fkey"
    FOREIGN KEY ("client_id") REFERENCES "engine_clients"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- RLS, enabled and forced, policies TO app_user, as on the other user tables.
-- Two kinds of scope see rows here:
-- - a user's (app.current_user_id): their own grants, to list, add and revoke;
-- - an engine client's (app.current_engine_client_id, set only by the engine
--   API for the client its token names): SELECT of that client's grants that
--   are active now, and nothing else. That scope sets no user, so every other
--   user table shows it no row; the engine API reads the credential of a
--   grant it found in the grant owner's user scope (src/engine/grants.ts).
ALTER TABLE "engine_grants" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "engine_grants" FORCE ROW LEVEL SECURITY;
CREATE POLICY "engine_grants_select" ON "engine_grants" FOR SELECT TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "engine_grants_insert" ON "engine_grants" FOR INSERT TO app_user
    WITH CHECK ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "engine_grants_update" ON "engine_grants" FOR UPDATE TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''))
    WITH CHECK ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "engine_grants_select_by_client" ON "engine_grants" FOR SELECT TO app_user
    USING ("client_id" = NULLIF(current_setting('app.current_engine_client_id', true), '')
           AND "revoked_at" IS NULL AND ("expires_at" IS NULL OR "expires_at" > now()));

-- A grant is created and revoked, nothing else: no DELETE (it goes with its
-- credential), and only revoked_at is updatable.
GRANT SELECT, INSERT ON "engine_grants" TO app_user;
GRANT UPDATE ("revoked_at") ON "engine_grants" TO app_user;

-- ---------------------------------------------------------------------------
-- The environment an engine request goes to: the one that last VERIFIED the
-- credential's current keys. Kept by a later UNREACHABLE check (a broker that
-- is briefly down says nothing about the keys, and must not cut engines off),
-- cleared by an INVALID result and by new keys (updateCredential resets it with
-- the rest of the verification).
ALTER TABLE "user_credentials" ADD COLUMN "verified_environment" VARCHAR(8);
ALTER TABLE "user_credentials"
    ADD CONSTRAINT "user_credentials_verified_environment_check"
        CHECK ("verified_environment" IN ('PAPER', 'LIVE')),
    ADD CONSTRAINT "user_credentials_verified_environment_status_check"
        CHECK ("verified_environment" IS NULL OR "verification_status" IN ('VERIFIED', 'UNREACHABLE')),
    ADD CONSTRAINT "user_credentials_verified_environment_verified_check"
        CHECK ("verification_status" <> 'VERIFIED' OR "verified_environment" = "verification_environment");
GRANT UPDATE ("verified_environment") ON "user_credentials" TO app_user;
-- Credentials verified before this migration. RLS is forced on the table, and
-- the owner running this has no policy: lift FORCE for this one statement,
-- inside the migration's transaction.
ALTER TABLE "user_credentials" NO FORCE ROW LEVEL SECURITY;
UPDATE "user_credentials" SET "verified_environment" = "verification_environment"
    WHERE "verification_status" = 'VERIFIED';
ALTER TABLE "user_credentials" FORCE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------
-- The audit trail: grants, revocations and every forwarded engine request.
-- engine_request is "METHOD /path-template" (e.g. "GET /v2/orders/{id}"):
-- the CHECK admits a template's characters only, so no query string, body or
-- id value can ever be stored there.
ALTER TABLE "credential_events"
    ADD COLUMN "engine_client_id" VARCHAR(64),
    ADD COLUMN "engine_request" VARCHAR(64);
ALTER TABLE "credential_events"
    DROP CONSTRAINT "credential_events_action_check",
    ADD CONSTRAINT "credential_events_action_check"
        CHECK ("action" IN ('STORED', 'UPDATED', 'DEACTIVATED', 'REACTIVATED', 'DELETED', 'VERIFIED',
                            'ACCESS_GRANTED', 'ACCESS_REVOKED', 'ENGINE_REQUEST')),
    ADD CONSTRAINT "credential_events_engine_client_check"
        CHECK (("action" IN ('ACCESS_GRANTED', 'ACCESS_REVOKED', 'ENGINE_REQUEST')) = ("engine_client_id" IS NOT NULL)),
    ADD CONSTRAINT "credential_events_engine_request_check"
        CHECK (("action" = 'ENGINE_REQUEST') = ("engine_request" IS NOT NULL)
               AND ("engine_request" IS NULL OR "engine_request" ~ '^(GET|POST|PATCH|DELETE) /v2/[a-z_/:{}]+$'));
