// The baseline's hand-written SQL, one statement per operation (two for W3),
// shared by bench/baseline-server.ts and bench/data-layer.ts.
export const W1_SQL = `
SELECT a.id, a.account_name AS "accountName",
       COALESCE((SELECT json_agg(json_build_object(
                   'id', c.id, 'nickname', COALESCE(c.nickname, c.credential_type),
                   'credentialType', c.credential_type, 'apiKeyHint', c.api_key_hint)
                 ORDER BY c.created_at, c.id)
                 FROM user_credentials c WHERE c.account_id = a.id AND c.is_active), '[]'::json) AS credentials
FROM user_accounts a WHERE a.user_id = $1 ORDER BY a.created_at`;

export const W2_SQL = `
INSERT INTO user_credentials
  (id, account_id, user_id, credential_type, nickname, api_key_ciphertext, secret_key_ciphertext, key_id, api_key_hint)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id, COALESCE(nickname, credential_type) AS nickname, credential_type AS "credentialType", api_key_hint AS "apiKeyHint"`;

export const W3_INSERT =
  'INSERT INTO user_accounts (user_id, account_name) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING';
export const W3_SELECT = 'SELECT id, account_name AS "accountName" FROM user_accounts WHERE user_id = $1';
