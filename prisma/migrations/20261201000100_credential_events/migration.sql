-- The audit trail of credential changes (docs/audit-trail.md): one row per
-- change, readable by its owner, append-only for every request.
--
-- No foreign key to user_credentials: an event must outlive its credential
-- (the history of a deleted credential ends with DELETED). The owner's key to
-- auth_users cascades: when a user is erased, their trail (client IPs, user
-- agents) goes with them, as their accounts and credentials already do; no one
-- could read it anyway, since RLS shows events only to their owner.
--
-- Values are constrained here as well as in code, so nothing but field names
-- can ever land in changed_fields (never a secret, hint or nickname value).
CREATE TABLE "credential_events" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" TEXT NOT NULL,
    "credential_id" UUID NOT NULL,
    "action" VARCHAR(16) NOT NULL,
    "changed_fields" TEXT[] NOT NULL,
    "verification_status" VARCHAR(16),
    -- The database's clock at the insert, in microseconds (not the
    -- transaction's start): events of one transaction, or of one millisecond,
    -- still sort in the order they were written.
    "occurred_at" TIMESTAMPTZ(6) NOT NULL DEFAULT clock_timestamp(),
    "client_ip" VARCHAR(64),
    "user_agent" VARCHAR(256),
    CONSTRAINT "credential_events_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "credential_events_action_check"
        CHECK ("action" IN ('STORED', 'UPDATED', 'DEACTIVATED', 'REACTIVATED', 'DELETED', 'VERIFIED')),
    CONSTRAINT "credential_events_changed_fields_check"
        CHECK ("changed_fields" <@ ARRAY['nickname', 'apiKey', 'secretKey', 'isActive']::TEXT[]),
    CONSTRAINT "credential_events_verification_status_check"
        CHECK ("verification_status" IN ('UNVERIFIED', 'VERIFIED', 'INVALID', 'UNREACHABLE')),
    -- An outcome belongs to VERIFIED events, and only to them.
    CONSTRAINT "credential_events_verified_outcome_check"
        CHECK (("action" = 'VERIFIED') = ("verification_status" IS NOT NULL))
);
-- Newest-first keyset paging on (occurred_at, id), per user and per
-- credential. PostgreSQL scans a btree backwards for ORDER BY ... DESC, so
-- ascending indexes serve it.
CREATE INDEX "credential_events_user_id_occurred_at_id_idx" ON "credential_events"("user_id", "occurred_at", "id");
CREATE INDEX "credential_events_credential_id_occurred_at_id_idx" ON "credential_events"("credential_id", "occurred_at", "id");
ALTER TABLE "credential_events" ADD CONSTRAINT "credential_events_user_id_fkey"
    FOREIGN KEY ("user_id") REFERENCES "auth_users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Row-level security, as on the other user-data tables (see the init
-- migration): enabled and forced, policies TO app_user on app.current_user_id.
-- Only SELECT and INSERT policies: with no UPDATE or DELETE policy, RLS alone
-- would already hide every row from such statements.
ALTER TABLE "credential_events" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "credential_events" FORCE ROW LEVEL SECURITY;
CREATE POLICY "credential_events_select" ON "credential_events" FOR SELECT TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "credential_events_insert" ON "credential_events" FOR INSERT TO app_user
    WITH CHECK ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));

-- Append-only for every request: the request role may add and read events,
-- never change or remove them (no UPDATE, DELETE or TRUNCATE privilege).
GRANT SELECT, INSERT ON "credential_events" TO app_user;
