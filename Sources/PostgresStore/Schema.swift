/// Candor's PostgreSQL schema, as named migrations applied in order, each once.
///
/// Times are milliseconds since 1970 in `bigint`, as in the SQLite schema, so values and queries
/// carry over unchanged (`candor migrate --to-postgres` copies them as they are).
enum PostgresSchema {
    static let migrations: [(name: String, sql: String)] = [
        ("v1-job-ledger", """
            CREATE TABLE job_runs (
                name text PRIMARY KEY,
                last_run_at bigint NOT NULL,
                detail text
            );
            CREATE TABLE job_claims (
                name text PRIMARY KEY,
                node text NOT NULL,
                until bigint NOT NULL
            );
            CREATE TABLE job_run_log (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                name text NOT NULL,
                node text NOT NULL,
                ran_at bigint NOT NULL,
                detail text
            );
            CREATE INDEX job_run_log_by_name ON job_run_log (name, ran_at);
            CREATE INDEX job_run_log_by_time ON job_run_log (ran_at);
            """),
        ("v2-audit-log", """
            CREATE TABLE audit_log (
                seq bigint PRIMARY KEY,
                ts bigint NOT NULL,
                actor text NOT NULL,
                action text NOT NULL,
                site_id text,
                detail text NOT NULL,
                prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
                hash bytea NOT NULL CHECK (length(hash) = 32)
            );
            CREATE INDEX audit_log_by_action ON audit_log (action, seq);
            CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
            CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
              FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
            """),
        // Salts are UNLOGGED: never written to the WAL, so never in a standby, a WAL archive or
        // a base backup, and gone after a crash (the nodes' cached copies then carry the day).
        ("v3-salts", """
            CREATE UNLOGGED TABLE salts (
                day bigint PRIMARY KEY,
                salt bytea NOT NULL CHECK (length(salt) = 32)
            );
            CREATE TABLE salt_destructions (
                day bigint PRIMARY KEY,
                deleted_at bigint NOT NULL,
                destroyed_at bigint
            );
            """),
    ]

    /// Applies the migrations this database lacks, in one transaction under an advisory lock:
    /// processes starting together wait for the first, then find nothing left to do. PostgreSQL's
    /// DDL is transactional, so a failed migration leaves the schema as it was.
    static func migrate(_ database: PostgresDatabase) throws {
        try database.transaction { c in
            try c.query("SELECT pg_advisory_xact_lock($1, 0)", [.int(Int64(AdvisoryLock.migrations.rawValue))])
            try c.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    name text PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let applied = Set(try c.query("SELECT name FROM schema_migrations").rows.compactMap { $0[0] })
            for migration in migrations where !applied.contains(migration.name) {
                try c.execute(script: migration.sql)
                try c.query("INSERT INTO schema_migrations (name) VALUES ($1)", [.text(migration.name)])
            }
        }
    }
}
