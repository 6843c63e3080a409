-- What the start-up checks (src/startup) read: whether the request role can
-- bypass row-level security, and which key ids stored credentials are sealed
-- with, without opening any row.

-- ---------------------------------------------------------------------------
-- The request role must be held to the policies. Roles are cluster-wide, and
-- the init migration adopts an app_user that already exists: one made
-- SUPERUSER or BYPASSRLS (by hand, or by another database's tooling) would
-- see every user's rows. Refuse it here. The runner applies all pending
-- migrations of a run in one transaction (src/db/migrate.ts), so on a new
-- database this also undoes the init migration's adoption: nothing stays.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_user' AND (rolsuper OR rolbypassrls)) THEN
    RAISE EXCEPTION 'the existing role app_user is SUPERUSER or BYPASSRLS, so row-level security would not hold it: '
      'run ALTER ROLE app_user NOSUPERUSER NOBYPASSRLS as a superuser, then migrate again';
  END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- The key ids in use. A NOLOGIN role that may read one column, key_id, of
-- every credential, and nothing else: no id, owner or ciphertext (so no
-- filter by user either), no other table. Its policy lets it see all rows,
-- but only while it is the current role: a policy also applies to the
-- members of its role, and the migration owner, a member (to enter it with
-- SET LOCAL ROLE, src/db/rls.ts readCredentialKeyIds), stays held by FORCE
-- ROW LEVEL SECURITY to no rows as itself. The request role must not be a
-- member of any role (the start-up check refuses that), so a request,
-- whatever it runs, cannot enter it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credential_key_reader') THEN
    BEGIN
      CREATE ROLE credential_key_reader NOLOGIN NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- created meanwhile by a migration of another database
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credential_key_reader'
             AND (rolsuper OR rolbypassrls OR rolcanlogin)) THEN
    RAISE EXCEPTION 'the existing role credential_key_reader can log in or bypass row-level security: '
      'run ALTER ROLE credential_key_reader NOLOGIN NOSUPERUSER NOBYPASSRLS as a superuser, then migrate again';
  END IF;
  IF NOT pg_has_role(current_user, 'credential_key_reader', 'MEMBER') THEN
    GRANT credential_key_reader TO CURRENT_USER;
  END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO credential_key_reader;
GRANT SELECT ("key_id") ON "user_credentials" TO credential_key_reader;
CREATE POLICY "user_credentials_key_ids" ON "user_credentials" FOR SELECT TO credential_key_reader
    USING (current_user = 'credential_key_reader');
