public import Foundation
public import Logging
public import ServiceLifecycle
public import Storage

/// A job the scheduler runs every `interval`; `run` returns a short summary for the job log.
public struct ScheduledJob: Sendable {
    public var name: String
    public var interval: Duration
    public var run: @Sendable () async throws -> String
    /// Also run as soon as the process starts, whenever it last ran (the rollups, which load the
    /// analytics engine).
    public var atStart: Bool

    public init(name: String, interval: Duration, atStart: Bool = false, run: @escaping @Sendable () async throws -> String) {
        self.name = name
        self.interval = interval
        self.atStart = atStart
        self.run = run
    }
}

/// A job that ran but left work undone (it is retried in a minute); its summary says what.
public struct JobIncomplete: Error, CustomStringConvertible {
    public let summary: String
    public init(summary: String) { self.summary = summary }
    public var description: String { summary }
}

/// Runs scheduled jobs (purges, deletion requests) as one ServiceLifecycle service. A job's last
/// run is stored, so after a restart the next run is computed from it rather than starting over.
/// Every run is claimed in the ledger first, so that any number of processes sharing the store
/// (Candor nodes, a CLI) run each job once per period; a claim is renewed while its run lasts.
/// The clock and the sleep are injected so tests drive days in milliseconds.
public struct JobScheduler: Service {
    let ledger: any JobLedger
    let jobs: [ScheduledJob]
    let logger: Logger
    let now: @Sendable () -> Date
    let sleep: @Sendable (Duration) async throws -> Void
    let maxSleep: Duration
    /// This process in the ledger's claims.
    let node: String
    /// How long a claim lasts without renewal: another node may run the job once a node that
    /// claimed it stopped renewing (it died) for this long.
    let lease: Duration

    public init(ledger: any JobLedger, jobs: [ScheduledJob], logger: Logger, now: @escaping @Sendable () -> Date = { Date() },
                maxSleep: Duration = .seconds(60), node: String = JobScheduler.processNode(), lease: Duration = .seconds(300),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.ledger = ledger
        self.jobs = jobs
        self.logger = logger
        self.now = now
        self.sleep = sleep
        self.maxSleep = maxSleep
        self.node = node
        self.lease = lease
        self.started = Int64(now().timeIntervalSince1970 * 1000)
    }

    /// A name for this process: host, process id and a random part (a restarted process with the
    /// same id is another node).
    public static func processNode() -> String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UInt32.random(in: 0...UInt32.max))"
    }

    /// When this scheduler was made (ms): jobs run `atStart` are due until they ran after it.
    let started: Int64

    static func ms(_ d: Duration) -> Int64 { d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000 }

    /// The newest last run at which `job` is due at `t`.
    func dueIfLastRunAtMost(_ job: ScheduledJob, at t: Int64) -> Int64 {
        let periodic = t - Self.ms(job.interval)
        return job.atStart ? max(periodic, started - 1) : periodic
    }

    /// When `job` is next due (ms), from its stored last run; now if it never ran.
    func nextDue(_ job: ScheduledJob, at t: Int64) throws -> Int64 {
        guard let last = try ledger.lastRun(job: job.name) else { return t }
        if job.atStart && last < started { return t }
        return last + Self.ms(job.interval)
    }

    /// Runs every job that is due and that this process could claim. Returns the names of the
    /// jobs that ran.
    @discardableResult
    public func tick() async -> [String] {
        var ran: [String] = []
        let leaseMs = Self.ms(lease)
        for job in jobs {
            let t = Int64(now().timeIntervalSince1970 * 1000)
            let cutoff = dueIfLastRunAtMost(job, at: t)
            do {
                guard try nextDue(job, at: t) <= t,
                      try ledger.claimRun(job: job.name, node: node, lastRunAtMost: cutoff, now: t, lease: leaseMs)
                else { continue }
            } catch {
                logger.error("job not claimed", metadata: ["job": "\(job.name)", "error": "\(error)"])
                continue
            }
            // The claim is renewed while the run lasts, so a long run is not taken for a dead one
            // (a renewal after the run was recorded is refused: the last run is past the cutoff).
            let renewal = Task { [ledger, node, now, lease] in
                while !Task.isCancelled {
                    try await Task.sleep(for: lease / 3)
                    let at = Int64(now().timeIntervalSince1970 * 1000)
                    _ = try ledger.claimRun(job: job.name, node: node, lastRunAtMost: cutoff, now: at, lease: leaseMs)
                }
            }
            defer { renewal.cancel() }
            do {
                let summary = try await job.run()
                try ledger.finishRun(job: job.name, node: node, at: t, detail: summary)
                ran.append(job.name)
                // Jobs that run every minute would flood the log at info level.
                logger.log(level: job.interval < .seconds(300) ? .debug : .info, "job ran",
                           metadata: ["job": "\(job.name)", "summary": "\(summary)"])
            } catch is CancellationError {
                return ran
            } catch {
                logger.error("job failed", metadata: ["job": "\(job.name)", "error": "\(error)"])
                // Retry in a minute rather than at once (or only after a whole interval).
                try? ledger.finishRun(job: job.name, node: node, at: t - Self.ms(job.interval) + 60_000, detail: "failed: \(error)")
            }
        }
        return ran
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await tick()
                let t = Int64(now().timeIntervalSince1970 * 1000)
                let next = jobs.compactMap { try? nextDue($0, at: t) }.min() ?? t + Self.ms(maxSleep)
                let wait = min(Duration.milliseconds(max(next - t, 1)), maxSleep)
                do { try await sleep(wait) } catch is CancellationError { return }
            }
        }
    }
}
