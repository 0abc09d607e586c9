/// The storage protocols every backend implements (SQLite in `Store`, PostgreSQL in
/// `PostgresStore`). The rest of the code names these, not a backend; one conformance suite
/// (Tests/CandorTests/StorageConformanceTests.swift) runs every behaviour against both.

/// A scheduled job's last run, as the ledger holds it.
public struct JobRun: Sendable, Equatable {
    public var name: String
    /// Milliseconds since 1970 (UTC).
    public var lastRunAt: Int64
    /// The run's summary; starts with "failed" when the run failed.
    public var detail: String?

    public init(name: String, lastRunAt: Int64, detail: String?) {
        self.name = name
        self.lastRunAt = lastRunAt
        self.detail = detail
    }
}

/// Where scheduled jobs record their runs and claim them, so that any number of processes
/// sharing one store run each job once per period.
///
/// A run is claimed before it starts (``claimRun(job:node:lastRunAtMost:now:lease:)``): the claim
/// is granted to one node only, and only while the job's recorded last run is old enough, so a
/// node that saw the job due a moment ago gets nothing once another node ran it. The claim ends
/// when the run is recorded (``finishRun(job:node:at:detail:)``) or, if the node died during the
/// run, when its lease expires; then another node may run it.
public protocol JobLedger: Sendable {
    /// The job's last recorded run (ms), or nil if it never ran.
    func lastRun(job: String) throws -> Int64?

    /// Claims the next run of `job` for `node`: granted when the job never ran or last ran at or
    /// before `lastRunAtMost`, and no other node holds a claim that lasts past `now`. The claim
    /// lasts until `now + lease` (ms) unless the run is recorded first. A node may claim again
    /// what it holds (a run of its own that ended without being recorded).
    func claimRun(job: String, node: String, lastRunAtMost: Int64, now: Int64, lease: Int64) throws -> Bool

    /// Records the run of `job` that `node` made at `ranAt`, with its summary, in the job's last
    /// run and in the run log, and ends `node`'s claim on it. The job's next period counts from
    /// `dueFrom`: `ranAt` for a run that completed, earlier for one that failed (to retry it
    /// sooner than a whole period later).
    func finishRun(job: String, node: String, ranAt: Int64, dueFrom: Int64, detail: String?) throws

    /// Ends `node`'s claim on `job` without recording a run (the process is shutting down).
    func releaseClaim(job: String, node: String) throws

    /// Every job's last run, by name.
    func jobRuns() throws -> [JobRun]

    /// The runs of `job` logged, newest first, at most `limit` (the log keeps a week).
    func runLog(job: String, limit: Int) throws -> [LoggedRun]
}

extension JobLedger {
    /// Records a run that completed at `at` (``finishRun(job:node:ranAt:dueFrom:detail:)``).
    public func finishRun(job: String, node: String, at: Int64, detail: String?) throws {
        try finishRun(job: job, node: node, ranAt: at, dueFrom: at, detail: detail)
    }
}

/// One run in the run log: which process ran the job, when, and what it said.
public struct LoggedRun: Sendable, Equatable {
    public var job: String
    public var node: String
    public var ranAt: Int64
    public var detail: String?

    public init(job: String, node: String, ranAt: Int64, detail: String?) {
        self.job = job; self.node = node; self.ranAt = ranAt; self.detail = detail
    }
}

/// How long the run log keeps a run (ms).
public let runLogRetentionMilliseconds: Int64 = 7 * 86_400_000
