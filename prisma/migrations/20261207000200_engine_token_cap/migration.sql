-- When a client was last issued a token. Issuing one updates it first, which
-- also locks the client's row: the tokens of one client are issued one at a
-- time, so the cap on its live tokens (ENGINE_TOKENS_PER_CLIENT: the oldest
-- ended when one more is issued) holds however many requests arrive at once.
ALTER TABLE "engine_clients" ADD COLUMN "last_token_at" TIMESTAMPTZ(3);
