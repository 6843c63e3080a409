-- The engine API's bookkeeping as a few SQL functions, so that a proxied
-- request costs one statement where it used to cost about ten: the token
-- check, the grant and its credential, the rate point, the daily counts and
-- the audit event, in the transaction that commits before the request is
-- forwarded. The design, and why it keeps row-level security whole:
-- docs/architecture/engine-proxy.md. In short:
--
-- * The request role calls these functions inside the request transaction
--   (src/db), which sets role app_user and scopes the transaction to no one.
--   The functions run as their caller (SECURITY INVOKER): every table they
--   read or write is read or written by app_user under the same policies as
--   any request. They move the scope along the one chain the engine API is
--   allowed: a valid token names its client (app.current_engine_client_id:
--   that client's active grants, SELECT only), a grant names its owner
--   (app.current_user_id: that user's rows). Lists a later scope could filter
--   differently are collected before the scope changes.
-- * Three small SECURITY DEFINER functions reach the tables the request role
--   must not read or write itself: engine_token_client answers which client a
--   token hash authenticates (never a hash or a secret); engine_take_rate_point
--   takes a point of the engine rate limits in the shared counters table, and
--   engine_rate_wait reads how long until one can be taken (only keys of the
--   engine kinds). They are owned by the migration owner, pin their
--   search_path, and only app_user may run them.

-- ---------------------------------------------------------------------------
-- The trading day of an instant: the calendar day in America/New_York, where
-- US markets keep their hours (DST included).
CREATE FUNCTION "engine_trading_day"("at" TIMESTAMPTZ) RETURNS DATE
LANGUAGE sql STABLE AS $$
    SELECT ("at" AT TIME ZONE 'America/New_York')::DATE
$$;

-- ---------------------------------------------------------------------------
-- The client a token hash authenticates right now: the token unexpired, its
-- client unrevoked. NULL otherwise.
CREATE FUNCTION "engine_token_client"("p_token_hash" TEXT) RETURNS VARCHAR
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT t."client_id"
      FROM "engine_tokens" t JOIN "engine_clients" c ON c."id" = t."client_id"
     WHERE t."token_hash" = "p_token_hash" AND t."expires_at" > now() AND c."revoked_at" IS NULL
$$;
REVOKE ALL ON FUNCTION "engine_token_client"(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "engine_token_client"(TEXT) TO app_user;

-- Takes one point of an engine limit in the shared counters
-- (auth_rate_limits, the rate-limiter-flexible store the sign-in throttle
-- uses, with its key format "<kind>:<subject>"): 0 when taken within the
-- limit, else the seconds until the window ends. Concurrent calls for one key
-- serialise on its row, so no number of instances can overshoot the limit.
CREATE FUNCTION "engine_take_rate_point"("p_kind" TEXT, "p_subject" TEXT, "p_max" INTEGER, "p_window_seconds" INTEGER)
RETURNS INTEGER
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_points INTEGER;
    v_expire TIMESTAMPTZ;
BEGIN
    IF "p_kind" NOT IN ('engine:credential', 'engine:check', 'engine:grants') THEN
        RAISE EXCEPTION 'not an engine rate limit: %', "p_kind";
    END IF;
    INSERT INTO "auth_rate_limits" AS r ("key", "points", "expire")
    VALUES ("p_kind" || ':' || "p_subject", 1, clock_timestamp() + make_interval(secs => "p_window_seconds"))
    ON CONFLICT ("key") DO UPDATE SET
        "points" = CASE WHEN r."expire" IS NULL OR r."expire" > clock_timestamp() THEN r."points" + 1 ELSE 1 END,
        "expire" = CASE WHEN r."expire" IS NULL OR r."expire" > clock_timestamp() THEN r."expire"
                        ELSE clock_timestamp() + make_interval(secs => "p_window_seconds") END
    RETURNING "points", "expire" INTO v_points, v_expire;
    IF v_points <= "p_max" THEN
        RETURN 0;
    END IF;
    RETURN GREATEST(1, CEIL(EXTRACT(EPOCH FROM (v_expire - clock_timestamp()))))::INTEGER;
END
$$;
REVOKE ALL ON FUNCTION "engine_take_rate_point"(TEXT, TEXT, INTEGER, INTEGER) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "engine_take_rate_point"(TEXT, TEXT, INTEGER, INTEGER) TO app_user;

-- The seconds to wait before a point of that limit can be taken (0: now),
-- without taking one: an order the limit would refuse is refused before its
-- market data is read.
CREATE FUNCTION "engine_rate_wait"("p_kind" TEXT, "p_subject" TEXT, "p_max" INTEGER) RETURNS INTEGER
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT COALESCE(
        (SELECT GREATEST(1, CEIL(EXTRACT(EPOCH FROM (r."expire" - clock_timestamp()))))::INTEGER
           FROM "auth_rate_limits" r
          WHERE r."key" = "p_kind" || ':' || "p_subject" AND r."points" >= "p_max"
            AND r."expire" > clock_timestamp()
            AND "p_kind" IN ('engine:credential', 'engine:check', 'engine:grants')),
        0)
$$;
REVOKE ALL ON FUNCTION "engine_rate_wait"(TEXT, TEXT, INTEGER) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "engine_rate_wait"(TEXT, TEXT, INTEGER) TO app_user;

-- ---------------------------------------------------------------------------
-- What an engine request may do with a credential, as the functions below
-- answer it. `outcome` is 'ok' or the first refusal, in the order the API
-- reports them: unauthenticated, not-found, insufficient-scope, inactive,
-- not-verified, changed (the grant's limits or the credential's keys changed
-- since the caller checked them), rate-limited, refused (a daily cap, with
-- rule, rule_limit and rule_value).
CREATE TYPE "engine_access" AS (
    "outcome" TEXT,
    "retry_after" INTEGER,
    "rule" TEXT,
    "rule_limit" TEXT,
    "rule_value" TEXT,
    "client_id" VARCHAR,
    "grant_id" UUID,
    "user_id" TEXT,
    "environment" VARCHAR,
    "key_id" VARCHAR,
    "secrets_version" INTEGER,
    "api_key_ciphertext" BYTEA,
    "secret_key_ciphertext" BYTEA,
    "guardrails" JSONB,
    "guardrails_version" INTEGER,
    "trading_day" DATE,
    "usage_orders" INTEGER,
    "usage_notional" NUMERIC,
    "event_id" UUID
);

-- A grant's limits as the API shows them (amounts as strings, exact, without
-- trailing zeros: "5000", "0.25").
CREATE FUNCTION "engine_guardrails_json"(g "engine_grants") RETURNS JSONB
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'tradingState', g."trading_state",
        'symbols', CASE WHEN cardinality(g."symbols") = 0 THEN NULL ELSE to_jsonb(g."symbols") END,
        'assetClasses', to_jsonb(g."asset_classes"),
        'orderTypes', to_jsonb(g."order_types"),
        'allowShortSelling', g."allow_short_selling",
        'allowExtendedHours', g."allow_extended_hours",
        'allowAccountWideActions', g."allow_account_wide_actions",
        'maxOrderNotional', trim_scale(g."max_order_notional")::TEXT,
        'maxOrderQuantity', trim_scale(g."max_order_quantity")::TEXT,
        'maxDailyNotional', trim_scale(g."max_daily_notional")::TEXT,
        'maxDailyOrders', g."max_daily_orders",
        'priceCollarPercent', trim_scale(g."price_collar_percent")::TEXT)
$$;

-- Finds what a token may do with a credential, and leaves the transaction
-- scoped to the grant's owner (when there is a grant). With p_lock, the grant
-- row is locked FOR SHARE until the transaction ends: a revocation or a change
-- of its limits (an UPDATE of that row) waits for the request's event to
-- commit, and every request checked after it sees it.
CREATE FUNCTION "engine_find_access"("p_token_hash" TEXT, "p_credential_id" UUID, "p_scope" TEXT, "p_lock" BOOLEAN)
RETURNS "engine_access"
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    a "engine_access";
    v_grant_id UUID;
    v_user_id TEXT;
    g "engine_grants";
    c "user_credentials";
BEGIN
    a."outcome" := 'unauthenticated';
    a."client_id" := "engine_token_client"("p_token_hash");
    IF a."client_id" IS NULL THEN
        RETURN a;
    END IF;

    -- The client's scope: its active grants, nothing else.
    PERFORM set_config('app.current_user_id', '', true);
    PERFORM set_config('app.current_engine_client_id', a."client_id", true);
    SELECT eg."id", eg."user_id" INTO v_grant_id, v_user_id
      FROM "engine_grants" eg
     WHERE eg."client_id" = a."client_id" AND eg."credential_id" = "p_credential_id"
       AND eg."revoked_at" IS NULL AND (eg."expires_at" IS NULL OR eg."expires_at" > now())
     ORDER BY eg."created_at" DESC LIMIT 1;
    PERFORM set_config('app.current_engine_client_id', '', true);
    a."outcome" := 'not-found';
    IF v_grant_id IS NULL THEN
        RETURN a;
    END IF;

    -- The owner's scope: the grant again, still active, and its credential.
    PERFORM set_config('app.current_user_id', v_user_id, true);
    IF "p_lock" THEN
        SELECT eg.* INTO g FROM "engine_grants" eg
         WHERE eg."id" = v_grant_id AND eg."revoked_at" IS NULL AND (eg."expires_at" IS NULL OR eg."expires_at" > now())
         FOR SHARE;
    ELSE
        SELECT eg.* INTO g FROM "engine_grants" eg
         WHERE eg."id" = v_grant_id AND eg."revoked_at" IS NULL AND (eg."expires_at" IS NULL OR eg."expires_at" > now());
    END IF;
    IF g."id" IS NULL THEN
        RETURN a;
    END IF;
    SELECT uc.* INTO c FROM "user_credentials" uc WHERE uc."id" = g."credential_id" AND uc."user_id" = g."user_id";
    IF c."id" IS NULL THEN
        RETURN a;
    END IF;
    a."grant_id" := g."id";
    a."user_id" := g."user_id";
    a."guardrails_version" := g."guardrails_version";
    a."secrets_version" := c."secrets_version";
    IF NOT ("p_scope" = ANY (g."scopes") OR ("p_scope" = 'READ' AND 'TRADE' = ANY (g."scopes"))) THEN
        a."outcome" := 'insufficient-scope';
        RETURN a;
    END IF;
    IF NOT c."is_active" THEN
        a."outcome" := 'inactive';
        RETURN a;
    END IF;
    IF c."verified_environment" IS NULL THEN
        a."outcome" := 'not-verified';
        RETURN a;
    END IF;
    a."outcome" := 'ok';
    a."environment" := c."verified_environment";
    a."key_id" := c."key_id";
    a."api_key_ciphertext" := c."api_key_ciphertext";
    a."secret_key_ciphertext" := c."secret_key_ciphertext";
    a."trading_day" := "engine_trading_day"(now());
    RETURN a;
END
$$;

-- The check before an order's market data is read: what the token may do
-- with the credential, the grant's limits and today's usage, and whether the
-- rate limit would refuse the request now (nothing is written). For a dry run
-- (p_dry_run), a point of the dry runs' own limit is taken instead: they never
-- use up the forwarded requests' limit.
CREATE FUNCTION "engine_authorize"("p_token_hash" TEXT, "p_credential_id" UUID, "p_scope" TEXT, "p_rate_max" INTEGER,
                                   "p_dry_run" BOOLEAN)
RETURNS "engine_access"
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    a "engine_access";
    g "engine_grants";
BEGIN
    a := "engine_find_access"("p_token_hash", "p_credential_id", "p_scope", false);
    IF a."grant_id" IS NOT NULL THEN
        SELECT eg.* INTO g FROM "engine_grants" eg WHERE eg."id" = a."grant_id";
        a."guardrails" := "engine_guardrails_json"(g);
    END IF;
    IF a."outcome" <> 'ok' THEN
        RETURN a;
    END IF;
    SELECT u."orders", u."notional" INTO a."usage_orders", a."usage_notional"
      FROM "engine_grant_usage" u WHERE u."grant_id" = a."grant_id" AND u."trading_day" = a."trading_day";
    a."usage_orders" := COALESCE(a."usage_orders", 0);
    a."usage_notional" := COALESCE(a."usage_notional", 0);
    IF "p_dry_run" THEN
        a."retry_after" := "engine_take_rate_point"('engine:check', "p_credential_id"::TEXT, "p_rate_max", 60);
    ELSE
        a."retry_after" := "engine_rate_wait"('engine:credential', "p_credential_id"::TEXT, "p_rate_max");
    END IF;
    IF a."retry_after" > 0 THEN
        a."outcome" := 'rate-limited';
    END IF;
    RETURN a;
END
$$;

-- Writes one event of an engine request in the owner's scope.
CREATE FUNCTION "engine_write_event"(a "engine_access", "p_credential_id" UUID, "p_action" TEXT, "p_request" TEXT,
                                     "p_rule" TEXT, "p_order" JSONB, "p_client_ip" TEXT, "p_user_agent" TEXT)
RETURNS UUID
LANGUAGE sql VOLATILE AS $$
    INSERT INTO "credential_events" ("user_id", "credential_id", "action", "changed_fields", "engine_client_id",
                                     "engine_request", "guardrail_rule", "engine_order", "client_ip", "user_agent")
    VALUES (a."user_id", "p_credential_id", "p_action", ARRAY[]::TEXT[], a."client_id", "p_request", "p_rule",
            "p_order", "p_client_ip", "p_user_agent")
    RETURNING "id"
$$;

-- Admits an engine request: checks everything again (token, client, grant,
-- scope, credential, and with p_guardrails_version / p_secrets_version that
-- the limits and keys are still those the caller checked), takes its rate
-- point, counts an order toward the grant's daily caps (p_count_orders 0 or 1,
-- p_count_notional >= 0; a cap reached meanwhile refuses it), and writes its
-- ENGINE_REQUEST event (or, for a cap, ENGINE_REFUSED). The caller commits,
-- then forwards only an 'ok' request, with the keys returned here.
CREATE FUNCTION "engine_admit"("p_token_hash" TEXT, "p_credential_id" UUID, "p_scope" TEXT, "p_request" TEXT,
                               "p_client_ip" TEXT, "p_user_agent" TEXT, "p_rate_max" INTEGER,
                               "p_guardrails_version" INTEGER, "p_secrets_version" INTEGER, "p_order" JSONB,
                               "p_count_orders" INTEGER, "p_count_notional" NUMERIC)
RETURNS "engine_access"
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    a "engine_access";
    g "engine_grants";
    u "engine_grant_usage";
BEGIN
    a := "engine_find_access"("p_token_hash", "p_credential_id", "p_scope", true);
    IF a."outcome" <> 'ok' THEN
        RETURN a;
    END IF;
    IF a."guardrails_version" IS DISTINCT FROM COALESCE("p_guardrails_version", a."guardrails_version")
       OR a."secrets_version" IS DISTINCT FROM COALESCE("p_secrets_version", a."secrets_version") THEN
        a."outcome" := 'changed';
        RETURN a;
    END IF;
    a."retry_after" := "engine_take_rate_point"('engine:credential', "p_credential_id"::TEXT, "p_rate_max", 60);
    IF a."retry_after" > 0 THEN
        a."outcome" := 'rate-limited';
        RETURN a;
    END IF;

    IF "p_count_orders" > 0 OR "p_count_notional" > 0 THEN
        SELECT eg.* INTO g FROM "engine_grants" eg WHERE eg."id" = a."grant_id";
        INSERT INTO "engine_grant_usage" ("grant_id", "trading_day", "user_id")
        VALUES (a."grant_id", a."trading_day", a."user_id")
        ON CONFLICT ("grant_id", "trading_day") DO NOTHING;
        -- The row lock serialises concurrent orders of one grant; each sees the
        -- counts the others committed, so together they never pass a cap.
        UPDATE "engine_grant_usage" eu
           SET "orders" = eu."orders" + "p_count_orders", "notional" = eu."notional" + "p_count_notional"
         WHERE eu."grant_id" = a."grant_id" AND eu."trading_day" = a."trading_day"
           AND (g."max_daily_notional" IS NULL OR eu."notional" + "p_count_notional" <= g."max_daily_notional")
           AND (g."max_daily_orders" IS NULL OR eu."orders" + "p_count_orders" <= g."max_daily_orders")
        RETURNING eu.* INTO u;
        IF u."grant_id" IS NULL THEN
            SELECT eu.* INTO u FROM "engine_grant_usage" eu
             WHERE eu."grant_id" = a."grant_id" AND eu."trading_day" = a."trading_day";
            a."outcome" := 'refused';
            IF g."max_daily_notional" IS NOT NULL AND u."notional" + "p_count_notional" > g."max_daily_notional" THEN
                a."rule" := 'maxDailyNotional';
                a."rule_limit" := trim_scale(g."max_daily_notional")::TEXT;
                a."rule_value" := trim_scale(u."notional" + "p_count_notional")::TEXT;
            ELSE
                a."rule" := 'maxDailyOrders';
                a."rule_limit" := g."max_daily_orders"::TEXT;
                a."rule_value" := (u."orders" + "p_count_orders")::TEXT;
            END IF;
            a."usage_orders" := u."orders";
            a."usage_notional" := u."notional";
            a."event_id" := "engine_write_event"(a, "p_credential_id", 'ENGINE_REFUSED', "p_request", a."rule",
                                                 "p_order", "p_client_ip", "p_user_agent");
            RETURN a;
        END IF;
        a."usage_orders" := u."orders";
        a."usage_notional" := u."notional";
    END IF;

    a."event_id" := "engine_write_event"(a, "p_credential_id", 'ENGINE_REQUEST', "p_request", NULL, "p_order",
                                         "p_client_ip", "p_user_agent");
    RETURN a;
END
$$;

-- Records a refusal by the guardrails (decided by the caller against the
-- limits of p_guardrails_version): checks the token, grant and credential
-- again, takes the rate point (a refused request counts like a forwarded
-- one), and writes ENGINE_REFUSED with the rule and the order's summary.
CREATE FUNCTION "engine_refuse"("p_token_hash" TEXT, "p_credential_id" UUID, "p_scope" TEXT, "p_request" TEXT,
                                "p_client_ip" TEXT, "p_user_agent" TEXT, "p_rate_max" INTEGER,
                                "p_guardrails_version" INTEGER, "p_secrets_version" INTEGER, "p_rule" TEXT,
                                "p_order" JSONB)
RETURNS "engine_access"
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    a "engine_access";
BEGIN
    a := "engine_find_access"("p_token_hash", "p_credential_id", "p_scope", true);
    IF a."outcome" <> 'ok' THEN
        RETURN a;
    END IF;
    IF a."guardrails_version" IS DISTINCT FROM "p_guardrails_version"
       OR a."secrets_version" IS DISTINCT FROM "p_secrets_version" THEN
        a."outcome" := 'changed';
        RETURN a;
    END IF;
    a."retry_after" := "engine_take_rate_point"('engine:credential', "p_credential_id"::TEXT, "p_rate_max", 60);
    IF a."retry_after" > 0 THEN
        a."outcome" := 'rate-limited';
        RETURN a;
    END IF;
    a."outcome" := 'refused';
    a."rule" := "p_rule";
    a."event_id" := "engine_write_event"(a, "p_credential_id", 'ENGINE_REFUSED', "p_request", "p_rule", "p_order",
                                         "p_client_ip", "p_user_agent");
    RETURN a;
END
$$;

-- Once Alpaca has answered a forwarded request: its status and X-Request-ID
-- beside the event, and for a refused order (4xx, 5xx) the counts it took
-- given back to the day it was counted on. Runs in the owner's scope (the
-- request transaction of src/db, scoped to p_user_id by the caller).
-- Its commit does not wait for the disk (synchronous_commit off, for this
-- transaction only): the engine's answer waits for this record, and a record
-- lost in a crash reads as "nothing came back", as after a timeout (and a
-- count not given back errs on the safe side). The event itself, written
-- before the request goes out, is committed durably as always.
CREATE FUNCTION "engine_record_response"("p_event_id" UUID, "p_status" INTEGER, "p_broker_request_id" TEXT,
                                         "p_grant_id" UUID, "p_trading_day" DATE, "p_give_back_orders" INTEGER,
                                         "p_give_back_notional" NUMERIC)
RETURNS VOID
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO "engine_responses" ("event_id", "user_id", "status", "broker_request_id")
    VALUES ("p_event_id", current_setting('app.current_user_id'), "p_status", "p_broker_request_id");
    IF "p_give_back_orders" > 0 OR "p_give_back_notional" > 0 THEN
        UPDATE "engine_grant_usage" eu
           SET "orders" = GREATEST(0, eu."orders" - "p_give_back_orders"),
               "notional" = GREATEST(0, eu."notional" - "p_give_back_notional")
         WHERE eu."grant_id" = "p_grant_id" AND eu."trading_day" = "p_trading_day";
    END IF;
END
$$;

-- GET /engine/v1/grants: the client's active grants (newest first, at most
-- p_limit, and whether there are more), each with its credential's account,
-- nickname and environment, its limits and today's usage: one statement,
-- whatever the number of owners. Takes a point of the client's limit on this
-- listing first.
CREATE FUNCTION "engine_client_grants"("p_token_hash" TEXT, "p_limit" INTEGER, "p_rate_max" INTEGER)
RETURNS JSONB
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_client_id VARCHAR;
    v_retry INTEGER;
    v_found JSONB;
    v_grant JSONB;
    v_listed JSONB := '[]'::JSONB;
    v_row JSONB;
    v_day DATE := "engine_trading_day"(now());
BEGIN
    v_client_id := "engine_token_client"("p_token_hash");
    IF v_client_id IS NULL THEN
        RETURN jsonb_build_object('outcome', 'unauthenticated');
    END IF;
    v_retry := "engine_take_rate_point"('engine:grants', v_client_id, "p_rate_max", 60);
    IF v_retry > 0 THEN
        RETURN jsonb_build_object('outcome', 'rate-limited', 'retryAfter', v_retry, 'clientId', v_client_id);
    END IF;

    -- Collected in the client's scope before any owner's scope is set.
    PERFORM set_config('app.current_user_id', '', true);
    PERFORM set_config('app.current_engine_client_id', v_client_id, true);
    SELECT COALESCE(jsonb_agg(jsonb_build_object('id', l."id", 'userId', l."user_id") ORDER BY l."created_at" DESC, l."id" DESC), '[]'::JSONB)
      INTO v_found
      FROM (SELECT eg."id", eg."user_id", eg."created_at" FROM "engine_grants" eg
             WHERE eg."client_id" = v_client_id AND eg."revoked_at" IS NULL
               AND (eg."expires_at" IS NULL OR eg."expires_at" > now())
             ORDER BY eg."created_at" DESC, eg."id" DESC LIMIT "p_limit" + 1) l;
    PERFORM set_config('app.current_engine_client_id', '', true);

    FOR v_grant IN SELECT value FROM jsonb_array_elements(v_found) WITH ORDINALITY AS e(value, n) WHERE n <= "p_limit" LOOP
        PERFORM set_config('app.current_user_id', v_grant ->> 'userId', true);
        SELECT jsonb_build_object(
                   'id', eg."id", 'credentialId', eg."credential_id", 'accountId', uc."account_id",
                   'nickname', COALESCE(uc."nickname", uc."credential_type"), 'scopes', to_jsonb(eg."scopes"),
                   'environment', uc."verified_environment", 'expiresAt', eg."expires_at",
                   'guardrails', "engine_guardrails_json"(eg),
                   'usageToday', jsonb_build_object('tradingDay', v_day,
                                                    'orders', COALESCE(u."orders", 0),
                                                    'notional', trim_scale(COALESCE(u."notional", 0))::TEXT))
          INTO v_row
          FROM "engine_grants" eg
          JOIN "user_credentials" uc ON uc."id" = eg."credential_id" AND uc."user_id" = eg."user_id"
          LEFT JOIN "engine_grant_usage" u ON u."grant_id" = eg."id" AND u."trading_day" = v_day
         WHERE eg."id" = (v_grant ->> 'id')::UUID;
        IF v_row IS NOT NULL THEN
            v_listed := v_listed || jsonb_build_array(v_row);
        END IF;
    END LOOP;
    PERFORM set_config('app.current_user_id', '', true);
    RETURN jsonb_build_object('outcome', 'ok', 'clientId', v_client_id, 'grants', v_listed,
                              'hasMore', jsonb_array_length(v_found) > "p_limit");
END
$$;

-- Revoking a client revokes every grant it holds, each with its
-- ACCESS_REVOKED event in its owner's trail. Runs in the client's scope (the
-- request transaction of src/db, scoped to the client by the caller), which
-- shows exactly its active grants; answers how many were revoked.
CREATE FUNCTION "engine_revoke_client_grants"() RETURNS INTEGER
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_client_id VARCHAR := NULLIF(current_setting('app.current_engine_client_id', true), '');
    v_found JSONB;
    v_grant JSONB;
    v_revoked INTEGER := 0;
BEGIN
    IF v_client_id IS NULL THEN
        RAISE EXCEPTION 'engine_revoke_client_grants runs in an engine client''s scope';
    END IF;
    SELECT COALESCE(jsonb_agg(jsonb_build_object('id', eg."id", 'userId', eg."user_id", 'credentialId', eg."credential_id")), '[]'::JSONB)
      INTO v_found
      FROM "engine_grants" eg WHERE eg."client_id" = v_client_id AND eg."revoked_at" IS NULL;
    PERFORM set_config('app.current_engine_client_id', '', true);
    FOR v_grant IN SELECT value FROM jsonb_array_elements(v_found) LOOP
        PERFORM set_config('app.current_user_id', v_grant ->> 'userId', true);
        UPDATE "engine_grants" SET "revoked_at" = now()
         WHERE "id" = (v_grant ->> 'id')::UUID AND "revoked_at" IS NULL;
        IF FOUND THEN
            INSERT INTO "credential_events" ("user_id", "credential_id", "action", "changed_fields", "engine_client_id")
            VALUES (v_grant ->> 'userId', (v_grant ->> 'credentialId')::UUID, 'ACCESS_REVOKED', ARRAY[]::TEXT[], v_client_id);
            v_revoked := v_revoked + 1;
        END IF;
    END LOOP;
    PERFORM set_config('app.current_user_id', '', true);
    PERFORM set_config('app.current_engine_client_id', v_client_id, true);
    RETURN v_revoked;
END
$$;
