public import Storage

extension PostgresDatabase: JobLedger {
    public func lastRun(job: String) throws -> Int64? {
        let rows = try query("SELECT last_run_at FROM job_runs WHERE name = $1", [.text(job)])
        return rows.rows.isEmpty ? nil : rows.int(0, 0)
    }

    /// The check and the claim run in one transaction holding the job's advisory lock, which
    /// ``finishRun(job:node:at:detail:)`` takes too: a node cannot read the job as due, then
    /// claim it after another node recorded its run.
    public func claimRun(job: String, node: String, lastRunAtMost: Int64, now: Int64, lease: Int64) throws -> Bool {
        try transaction { c in
            try Self.lock(job: job, c)
            let last = try c.query("SELECT last_run_at FROM job_runs WHERE name = $1", [.text(job)])
            if !last.rows.isEmpty, let at = last.int(0, 0), at > lastRunAtMost { return false }
            return try c.query("""
                INSERT INTO job_claims (name, node, until) VALUES ($1, $2, $3)
                ON CONFLICT (name) DO UPDATE SET node = excluded.node, until = excluded.until
                WHERE job_claims.node = excluded.node OR job_claims.until <= $4
                """, [.text(job), .text(node), .int(now + lease), .int(now)]).changes == 1
        }
    }

    public func finishRun(job: String, node: String, ranAt: Int64, dueFrom: Int64, detail: String?) throws {
        try transaction { c in
            try Self.lock(job: job, c)
            try c.query("""
                INSERT INTO job_runs (name, last_run_at, detail) VALUES ($1, $2, $3)
                ON CONFLICT (name) DO UPDATE SET last_run_at = excluded.last_run_at, detail = excluded.detail
                """, [.text(job), .int(dueFrom), PostgresValue(detail)])
            try c.query("DELETE FROM job_claims WHERE name = $1 AND node = $2", [.text(job), .text(node)])
            try c.query("INSERT INTO job_run_log (name, node, ran_at, detail) VALUES ($1, $2, $3, $4)",
                        [.text(job), .text(node), .int(ranAt), PostgresValue(detail)])
            try c.query("DELETE FROM job_run_log WHERE ran_at < $1", [.int(ranAt - runLogRetentionMilliseconds)])
        }
    }

    public func releaseClaim(job: String, node: String) throws {
        try transaction { c in
            try Self.lock(job: job, c)
            try c.query("DELETE FROM job_claims WHERE name = $1 AND node = $2", [.text(job), .text(node)])
        }
    }

    /// Takes the job's transaction-scoped advisory lock: claims, records and releases of one job
    /// queue there.
    private static func lock(job: String, _ c: PostgresConnection) throws {
        try c.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [.int(Int64(AdvisoryLock.job.rawValue)), .text(job)])
    }

    public func runLog(job: String, limit: Int) throws -> [LoggedRun] {
        let rows = try query("SELECT name, node, ran_at, detail FROM job_run_log WHERE name = $1 ORDER BY ran_at DESC, id DESC LIMIT $2",
                             [.text(job), .int(Int64(limit))])
        return rows.rows.indices.map { LoggedRun(job: rows.text($0, 0) ?? "", node: rows.text($0, 1) ?? "", ranAt: rows.int($0, 2) ?? 0,
                                                  detail: rows.text($0, 3)) }
    }

    public func jobRuns() throws -> [JobRun] {
        let rows = try query("SELECT name, last_run_at, detail FROM job_runs ORDER BY name")
        return rows.rows.indices.map { i in
            JobRun(name: rows.text(i, 0) ?? "", lastRunAt: rows.int(i, 1) ?? 0, detail: rows.text(i, 2))
        }
    }
}
