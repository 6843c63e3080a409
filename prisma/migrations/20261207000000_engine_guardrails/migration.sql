-- Guardrails on engine grants (docs/engines.md, "Guardrails"): the limits a
-- user sets on what an engine may do with a credential's keys, the per-day
-- counts they are checked against, and what the audit trail records of them
-- and of Alpaca's answers.

-- ---------------------------------------------------------------------------
-- The limits live on the grant itself, so they are user data under the
-- grant's own row-level security, and a grant made before this migration has
-- the defaults. Amounts are exact decimals: numeric(27,9) holds 18 digits
-- before the point and 9 after, the API's Decimal. A NULL cap means none.
ALTER TABLE "engine_grants"
    ADD COLUMN "trading_state" VARCHAR(10) NOT NULL DEFAULT 'ACTIVE',
    -- Empty: any symbol (the API shows null); else only these, upper case.
    ADD COLUMN "symbols" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    ADD COLUMN "asset_classes" TEXT[] NOT NULL DEFAULT ARRAY['US_EQUITY']::TEXT[],
    ADD COLUMN "order_types" TEXT[] NOT NULL
        DEFAULT ARRAY['MARKET', 'LIMIT', 'STOP', 'STOP_LIMIT', 'TRAILING_STOP']::TEXT[],
    ADD COLUMN "allow_short_selling" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "allow_extended_hours" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "allow_account_wide_actions" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "max_order_notional" NUMERIC(27, 9),
    ADD COLUMN "max_order_quantity" NUMERIC(27, 9),
    ADD COLUMN "max_daily_notional" NUMERIC(27, 9),
    ADD COLUMN "max_daily_orders" INTEGER,
    ADD COLUMN "price_collar_percent" NUMERIC(27, 9),
    -- Bumped by the trigger below whenever a limit changes: the proxy checks an
    -- order against one version and writes its event only if that version is
    -- still current (src/engine/admission.ts).
    ADD COLUMN "guardrails_version" INTEGER NOT NULL DEFAULT 1;

ALTER TABLE "engine_grants"
    ADD CONSTRAINT "engine_grants_trading_state_check"
        CHECK ("trading_state" IN ('ACTIVE', 'REDUCING', 'HALTED')),
    ADD CONSTRAINT "engine_grants_symbols_check"
        CHECK (cardinality("symbols") <= 500),
    ADD CONSTRAINT "engine_grants_asset_classes_check"
        CHECK (cardinality("asset_classes") >= 1
               AND "asset_classes" <@ ARRAY['US_EQUITY', 'CRYPTO', 'US_OPTION']::TEXT[]),
    ADD CONSTRAINT "engine_grants_order_types_check"
        CHECK (cardinality("order_types") >= 1
               AND "order_types" <@ ARRAY['MARKET', 'LIMIT', 'STOP', 'STOP_LIMIT', 'TRAILING_STOP']::TEXT[]),
    ADD CONSTRAINT "engine_grants_caps_check"
        CHECK (("max_order_notional" IS NULL OR "max_order_notional" > 0)
               AND ("max_order_quantity" IS NULL OR "max_order_quantity" > 0)
               AND ("max_daily_notional" IS NULL OR "max_daily_notional" > 0)
               AND ("max_daily_orders" IS NULL OR "max_daily_orders" > 0)
               AND ("price_collar_percent" IS NULL OR "price_collar_percent" > 0));

CREATE FUNCTION "engine_grants_bump_guardrails_version"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW."trading_state", NEW."symbols", NEW."asset_classes", NEW."order_types", NEW."allow_short_selling",
        NEW."allow_extended_hours", NEW."allow_account_wide_actions", NEW."max_order_notional",
        NEW."max_order_quantity", NEW."max_daily_notional", NEW."max_daily_orders", NEW."price_collar_percent")
       IS DISTINCT FROM
       (OLD."trading_state", OLD."symbols", OLD."asset_classes", OLD."order_types", OLD."allow_short_selling",
        OLD."allow_extended_hours", OLD."allow_account_wide_actions", OLD."max_order_notional",
        OLD."max_order_quantity", OLD."max_daily_notional", OLD."max_daily_orders", OLD."price_collar_percent") THEN
        NEW."guardrails_version" := OLD."guardrails_version" + 1;
    ELSE
        NEW."guardrails_version" := OLD."guardrails_version";
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER "engine_grants_guardrails_version"
    BEFORE UPDATE ON "engine_grants"
    FOR EACH ROW EXECUTE FUNCTION "engine_grants_bump_guardrails_version"();

-- A grant's limits change; nothing else of it but its revocation does.
GRANT UPDATE ("trading_state", "symbols", "asset_classes", "order_types", "allow_short_selling",
              "allow_extended_hours", "allow_account_wide_actions", "max_order_notional", "max_order_quantity",
              "max_daily_notional", "max_daily_orders", "price_collar_percent")
    ON "engine_grants" TO app_user;

-- Target of the usage rows' composite key (a usage row's owner is its grant's).
CREATE UNIQUE INDEX "engine_grants_id_user_id_key" ON "engine_grants"("id", "user_id");

-- ---------------------------------------------------------------------------
-- What a grant has used per trading day (the calendar day in
-- America/New_York): new orders and replacements accepted, and the notional
-- they counted. Taken in the transaction that writes the ENGINE_REQUEST event,
-- before the request is forwarded; given back when Alpaca refuses it.
CREATE TABLE "engine_grant_usage" (
    "grant_id" UUID NOT NULL,
    "trading_day" DATE NOT NULL,
    "user_id" TEXT NOT NULL,
    "orders" INTEGER NOT NULL DEFAULT 0,
    "notional" NUMERIC(38, 9) NOT NULL DEFAULT 0,
    CONSTRAINT "engine_grant_usage_pkey" PRIMARY KEY ("grant_id", "trading_day"),
    CONSTRAINT "engine_grant_usage_counts_check" CHECK ("orders" >= 0 AND "notional" >= 0)
);
CREATE INDEX "engine_grant_usage_user_id_idx" ON "engine_grant_usage"("user_id");
ALTER TABLE "engine_grant_usage" ADD CONSTRAINT "engine_grant_usage_grant_id_user_id_fkey"
    FOREIGN KEY ("grant_id", "user_id") REFERENCES "engine_grants"("id", "user_id") ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE "engine_grant_usage" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "engine_grant_usage" FORCE ROW LEVEL SECURITY;
CREATE POLICY "engine_grant_usage_select" ON "engine_grant_usage" FOR SELECT TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "engine_grant_usage_insert" ON "engine_grant_usage" FOR INSERT TO app_user
    WITH CHECK ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "engine_grant_usage_update" ON "engine_grant_usage" FOR UPDATE TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''))
    WITH CHECK ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
GRANT SELECT, INSERT ON "engine_grant_usage" TO app_user;
GRANT UPDATE ("orders", "notional") ON "engine_grant_usage" TO app_user;

-- ---------------------------------------------------------------------------
-- The audit trail: guardrail changes, refused engine requests (with the rule),
-- and an order's summary on ENGINE_REQUEST and ENGINE_REFUSED. The summary
-- holds what the order said (symbol, side, type, amounts, client_order_id)
-- and what the checks counted: never a key, a token or anything else of the
-- body.
ALTER TABLE "credential_events"
    ALTER COLUMN "action" TYPE VARCHAR(32),
    ADD COLUMN "guardrail_rule" VARCHAR(32),
    ADD COLUMN "engine_order" JSONB;

ALTER TABLE "credential_events"
    DROP CONSTRAINT "credential_events_action_check",
    ADD CONSTRAINT "credential_events_action_check"
        CHECK ("action" IN ('STORED', 'UPDATED', 'DEACTIVATED', 'REACTIVATED', 'DELETED', 'VERIFIED',
                            'ACCESS_GRANTED', 'ACCESS_REVOKED', 'ENGINE_REQUEST',
                            'GUARDRAILS_CHANGED', 'ENGINE_REFUSED')),
    DROP CONSTRAINT "credential_events_changed_fields_check",
    ADD CONSTRAINT "credential_events_changed_fields_check"
        CHECK ("changed_fields" <@ ARRAY['nickname', 'apiKey', 'secretKey', 'isActive',
                                         'tradingState', 'symbols', 'assetClasses', 'orderTypes',
                                         'allowShortSelling', 'allowExtendedHours', 'allowAccountWideActions',
                                         'maxOrderNotional', 'maxOrderQuantity', 'maxDailyNotional',
                                         'maxDailyOrders', 'priceCollarPercent']::TEXT[]),
    DROP CONSTRAINT "credential_events_engine_client_check",
    ADD CONSTRAINT "credential_events_engine_client_check"
        CHECK (("action" IN ('ACCESS_GRANTED', 'ACCESS_REVOKED', 'ENGINE_REQUEST', 'GUARDRAILS_CHANGED',
                             'ENGINE_REFUSED')) = ("engine_client_id" IS NOT NULL)),
    DROP CONSTRAINT "credential_events_engine_request_check",
    ADD CONSTRAINT "credential_events_engine_request_check"
        CHECK (("action" IN ('ENGINE_REQUEST', 'ENGINE_REFUSED')) = ("engine_request" IS NOT NULL)
               AND ("engine_request" IS NULL OR "engine_request" ~ '^(GET|POST|PATCH|DELETE) /v2/[a-z_/:{}]+$')),
    ADD CONSTRAINT "credential_events_guardrail_rule_check"
        CHECK (("action" = 'ENGINE_REFUSED') = ("guardrail_rule" IS NOT NULL)
               AND ("guardrail_rule" IS NULL OR "guardrail_rule" ~ '^[a-zA-Z]{1,32}$')),
    ADD CONSTRAINT "credential_events_engine_order_check"
        CHECK ("engine_order" IS NULL
               OR ("action" IN ('ENGINE_REQUEST', 'ENGINE_REFUSED') AND jsonb_typeof("engine_order") = 'object'
                   AND "engine_order" - ARRAY['symbol', 'side', 'type', 'qty', 'notional', 'clientOrderId',
                                              'estimatedNotional', 'referencePrice'] = '{}'::JSONB));

-- Target of the engine responses' composite key.
CREATE UNIQUE INDEX "credential_events_id_user_id_key" ON "credential_events"("id", "user_id");

-- ---------------------------------------------------------------------------
-- How Alpaca answered a forwarded request: its HTTP status and X-Request-ID,
-- recorded once the answer's headers arrive. A companion row rather than
-- columns of the event: the event must be committed before the request goes
-- out, and the trail stays append-only for the request role (INSERT and
-- SELECT only, here as on credential_events): an answer can be added once
-- (the primary key) and never changed or removed. No row: nothing came back
-- (a timeout or a connection error).
CREATE TABLE "engine_responses" (
    "event_id" UUID NOT NULL,
    "user_id" TEXT NOT NULL,
    "status" INTEGER NOT NULL,
    "broker_request_id" VARCHAR(100),
    "recorded_at" TIMESTAMPTZ(6) NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT "engine_responses_pkey" PRIMARY KEY ("event_id"),
    CONSTRAINT "engine_responses_status_check" CHECK ("status" BETWEEN 100 AND 599)
);
-- The key to the event includes its owner, so an answer can only ever be
-- recorded as its event's owner's.
CREATE UNIQUE INDEX "engine_responses_event_id_user_id_key" ON "engine_responses"("event_id", "user_id");
ALTER TABLE "engine_responses" ADD CONSTRAINT "engine_responses_event_id_user_id_fkey"
    FOREIGN KEY ("event_id", "user_id") REFERENCES "credential_events"("id", "user_id") ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE "engine_responses" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "engine_responses" FORCE ROW LEVEL SECURITY;
CREATE POLICY "engine_responses_select" ON "engine_responses" FOR SELECT TO app_user
    USING ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
CREATE POLICY "engine_responses_insert" ON "engine_responses" FOR INSERT TO app_user
    WITH CHECK ("user_id" = NULLIF(current_setting('app.current_user_id', true), ''));
GRANT SELECT, INSERT ON "engine_responses" TO app_user;
