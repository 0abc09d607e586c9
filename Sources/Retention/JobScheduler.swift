public import Foundation
public import Logging
public import ServiceLifecycle
public import Storage
import Synchronization

/// A job the scheduler runs every `interval`; `run` returns a short summary for the job log.
public struct ScheduledJob: Sendable {
    public var name: String
    public var interval: Duration
    public var run: @Sendable () async throws -> String
    /// Also run as soon as the process starts, whenever it last ran (the rollups, which load the
    /// analytics engine).
    public var atStart: Bool
    /// Whether every process runs the job for itself (its work is in the process: the rollups
    /// load its analytics engine) rather than one process per period.
    public var perProcess: Bool

    public init(name: String, interval: Duration, atStart: Bool = false, perProcess: Bool = false,
                run: @escaping @Sendable () async throws -> String) {
        self.name = name
        self.interval = interval
        self.atStart = atStart
        self.perProcess = perProcess
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
    private let state = State()
    private final class State: Sendable {
        /// Jobs whose claim another process held, and when to ask again (ms).
        let refusedUntil = Mutex<[String: Int64]>([:])
        /// When each ``ScheduledJob/perProcess`` job's period counts from in this process (ms).
        let dueFromHere = Mutex<[String: Int64]>([:])
    }

    static func ms(_ d: Duration) -> Int64 { d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000 }

    /// The newest last run at which `job` is due at `t`.
    func dueIfLastRunAtMost(_ job: ScheduledJob, at t: Int64) -> Int64 {
        let periodic = t - Self.ms(job.interval)
        return job.atStart ? max(periodic, started - 1) : periodic
    }

    /// When `job` is next due (ms), from its stored last run; now if it never ran. A job whose
    /// claim another process holds (it is running there, or that process died with it) is asked
    /// for again after a while, not at once.
    func nextDue(_ job: ScheduledJob, at t: Int64) throws -> Int64 {
        if job.perProcess {
            // This process's own runs count, not another's: due at start, then every interval.
            return state.dueFromHere.withLock { $0[job.name] }.map { $0 + Self.ms(job.interval) } ?? t
        }
        let notBefore = state.refusedUntil.withLock { $0[job.name] } ?? 0
        guard let last = try ledger.lastRun(job: job.name) else { return max(t, notBefore) }
        if job.atStart && last < started { return max(t, notBefore) }
        return max(last + Self.ms(job.interval), notBefore)
    }

    /// Not to be asked for again before its period or `maxSleep` has passed, whichever is shorter.
    private func askLater(_ job: ScheduledJob, at t: Int64) {
        state.refusedUntil.withLock { $0[job.name] = t + min(Self.ms(job.interval), Self.ms(maxSleep)) }
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
                guard try nextDue(job, at: t) <= t else { continue }
                if !job.perProcess,
                   try !ledger.claimRun(job: job.name, node: node, lastRunAtMost: cutoff, now: t, lease: leaseMs) {
                    askLater(job, at: t)
                    continue
                }
            } catch {
                // The store failed (busy, connection lost): asked for again after a while, not at once.
                askLater(job, at: t)
                logger.error("job not claimed", metadata: ["job": "\(job.name)", "error": "\(error)"])
                continue
            }
            state.refusedUntil.withLock { $0[job.name] = nil }
            // The claim is renewed while the run lasts, so a long run is not taken for a dead one
            // (a renewal after the run was recorded is refused: the last run is past the cutoff).
            let renewal = job.perProcess ? nil : Task { [ledger, node, now, lease, logger] in
                while !Task.isCancelled {
                    try await Task.sleep(for: lease / 3)
                    let at = Int64(now().timeIntervalSince1970 * 1000)
                    do {
                        if try !ledger.claimRun(job: job.name, node: node, lastRunAtMost: cutoff, now: at, lease: leaseMs) {
                            logger.warning("job's claim lost while it runs: another process may run it too", metadata: ["job": "\(job.name)"])
                        }
                    } catch {
                        logger.warning("job's claim not renewed; retried", metadata: ["job": "\(job.name)", "error": "\(error)"])
                    }
                }
            }
            // The renewal is stopped, and waited for, before the claim is let go or the run
            // recorded: a renewal still in flight would otherwise take the claim back.
            func stopRenewal() async {
                renewal?.cancel()
                _ = await renewal?.result
            }
            let summary: String
            do {
                summary = try await job.run()
                await stopRenewal()
                if job.perProcess { state.dueFromHere.withLock { $0[job.name] = t } }
            } catch is CancellationError {
                await stopRenewal()
                // Shutting down: the claim is let go so another process (or this one restarted) need not wait for it to lapse.
                try? ledger.releaseClaim(job: job.name, node: node)
                return ran
            } catch {
                await stopRenewal()
                logger.error("job failed", metadata: ["job": "\(job.name)", "error": "\(error)"])
                // Retried in a minute (or after its interval, if shorter), not at once nor only a whole interval later;
                // also when the failure cannot be recorded.
                let retry = min(60_000, Self.ms(job.interval))
                if job.perProcess { state.dueFromHere.withLock { $0[job.name] = t - Self.ms(job.interval) + retry } }
                state.refusedUntil.withLock { $0[job.name] = t + retry }
                try? ledger.finishRun(job: job.name, node: node, ranAt: t, dueFrom: t - Self.ms(job.interval) + retry,
                                      detail: "failed: \(error)")
                continue
            }
            // The run is recorded apart from the job's own failure: a run that did its work is
            // not run again because its record could not be written at once.
            var recorded = false
            for attempt in 1...3 {
                do {
                    try ledger.finishRun(job: job.name, node: node, at: t, detail: summary)
                    recorded = true
                    break
                } catch {
                    logger.warning("job ran; recording its run failed", metadata: ["job": "\(job.name)", "attempt": "\(attempt)", "error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(200 * attempt))
                }
            }
            guard recorded else {
                // Not asked for again before its period or a minute has passed, whichever is shorter.
                askLater(job, at: t)
                logger.error("job ran but its run could not be recorded: it may run again before its period ends", metadata: ["job": "\(job.name)"])
                continue
            }
            ran.append(job.name)
            // Jobs that run every minute would flood the log at info level.
            logger.log(level: job.interval < .seconds(300) ? .debug : .info, "job ran",
                       metadata: ["job": "\(job.name)", "summary": "\(summary)"])
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
