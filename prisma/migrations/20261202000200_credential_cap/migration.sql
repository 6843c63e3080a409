-- At most MAX_CREDENTIALS_PER_ACCOUNT credentials per account
-- (docs/configuration.md), enforced here so that concurrent stores cannot pass it.
--
-- The cap comes from the request transaction's scope: withUser (src/db/request-transaction.ts)
-- sends set_config('app.max_credentials_per_account', <cap>, true) with BEGIN,
-- in the statement it already sends, so the check costs storeCredential no
-- round trip. Without that setting (a tool running as the owner) the
-- default, 100, applies.
--
-- Concurrency: the trigger first locks the account row (FOR NO KEY UPDATE:
-- the weakest lock that two stores cannot both hold, and one that does not
-- conflict with the foreign key checks' KEY SHARE locks), so the stores of one
-- account run one after the other; the count that follows takes a fresh
-- snapshot (a VOLATILE PL/pgSQL function does, statement by statement, under
-- READ COMMITTED) and so sees every credential committed before the lock was
-- granted, and the rows inserted earlier by the same statement. Stores on
-- different accounts never wait for each other.
--
-- It runs as the caller, under RLS: the request role sees exactly the
-- account's credentials (an account and its credentials have one owner, by the
-- composite foreign key). An account the caller cannot see is not locked and
-- not counted: the foreign key then refuses the row (NOT_FOUND).
--
-- The refusal carries SQLSTATE BCA01, which src/db/errors.ts recognises.
CREATE FUNCTION "enforce_credential_cap"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cap INTEGER := COALESCE(NULLIF(current_setting('app.max_credentials_per_account', true), '')::INTEGER, 100);
    stored INTEGER;
BEGIN
    PERFORM 1 FROM "user_accounts" WHERE "id" = NEW."account_id" FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    SELECT count(*) INTO stored FROM "user_credentials" WHERE "account_id" = NEW."account_id";
    IF stored >= cap THEN
        RAISE EXCEPTION 'an account holds at most % credentials', cap
            USING ERRCODE = 'BCA01', HINT = 'delete a credential first';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER "user_credentials_cap"
    BEFORE INSERT ON "user_credentials"
    FOR EACH ROW EXECUTE FUNCTION "enforce_credential_cap"();
