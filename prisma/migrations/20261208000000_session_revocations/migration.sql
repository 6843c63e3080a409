-- Sign-out on every instance: a session that ends, or is cut short, is
-- announced on the channel session_revoked with its user id as payload
-- (never the token), so that every server forgets that user's cached
-- sessions (src/db/session-revocations.ts).
--
-- better-auth ends sessions by DELETE (sign-out, revoke-session(s), a password
-- change that revokes the other sessions, a deleted user through the cascade,
-- the cleanup of expired ones); its UPDATEs only extend a session. An UPDATE
-- that shortens a session, or moves it to another token or user, is announced
-- as well, whoever makes it.
--
-- NOTIFY is transactional: listeners hear it once the change commits, and
-- never for a rollback; identical notifications of one transaction (all the
-- sessions of one user) are delivered once.
CREATE FUNCTION "announce_session_revoked"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('session_revoked', OLD."user_id");
    RETURN NULL;
END
$$;

CREATE TRIGGER "auth_sessions_revoked_on_delete"
    AFTER DELETE ON "auth_sessions"
    FOR EACH ROW EXECUTE FUNCTION "announce_session_revoked"();

CREATE TRIGGER "auth_sessions_revoked_on_update"
    AFTER UPDATE OF "expires_at", "token", "user_id" ON "auth_sessions"
    FOR EACH ROW
    WHEN (NEW."expires_at" < OLD."expires_at"
          OR NEW."token" IS DISTINCT FROM OLD."token"
          OR NEW."user_id" IS DISTINCT FROM OLD."user_id")
    EXECUTE FUNCTION "announce_session_revoked"();
