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

    /// Records the run of `job` at `at` with its summary, and ends `node`'s claim on it.
    func finishRun(job: String, node: String, at: Int64, detail: String?) throws

    /// Every job's last run, by name.
    func jobRuns() throws -> [JobRun]
}
