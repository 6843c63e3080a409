-- Broker verification (docs/verification.md): what the last check at the broker
-- found, stored on the credential, and a version of its secrets so that a
-- check's result is only written if the keys are still the ones checked.
--
-- secrets_version is bumped by updateCredential whenever a new apiKey or
-- secretKey is stored (not by key rotation, which re-encrypts the same
-- secrets): the verification's compare-and-set keys on it.
ALTER TABLE "user_credentials"
    ADD COLUMN "secrets_version" INTEGER NOT NULL DEFAULT 1,
    ADD COLUMN "verification_status" VARCHAR(16) NOT NULL DEFAULT 'UNVERIFIED',
    ADD COLUMN "verification_checked_at" TIMESTAMPTZ(3),
    ADD COLUMN "verification_environment" VARCHAR(8),
    ADD COLUMN "broker_account_number" VARCHAR(16),
    ADD COLUMN "broker_account_status" VARCHAR(64),
    ADD COLUMN "verification_message" VARCHAR(200);

ALTER TABLE "user_credentials"
    ADD CONSTRAINT "user_credentials_verification_status_check"
        CHECK ("verification_status" IN ('UNVERIFIED', 'VERIFIED', 'INVALID', 'UNREACHABLE')),
    ADD CONSTRAINT "user_credentials_verification_environment_check"
        CHECK ("verification_environment" IN ('PAPER', 'LIVE')),
    -- Checked exactly when not UNVERIFIED; the broker's account only when VERIFIED.
    ADD CONSTRAINT "user_credentials_verification_checked_check"
        CHECK (("verification_status" = 'UNVERIFIED') = ("verification_checked_at" IS NULL)),
    ADD CONSTRAINT "user_credentials_verification_account_check"
        CHECK ("verification_status" = 'VERIFIED'
               OR ("verification_environment" IS NULL AND "broker_account_number" IS NULL
                   AND "broker_account_status" IS NULL)),
    ADD CONSTRAINT "user_credentials_secrets_version_check" CHECK ("secrets_version" >= 1);

GRANT UPDATE ("secrets_version", "verification_status", "verification_checked_at", "verification_environment",
              "broker_account_number", "broker_account_status", "verification_message")
    ON "user_credentials" TO app_user;
