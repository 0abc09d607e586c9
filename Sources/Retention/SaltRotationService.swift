public import Foundation
public import Logging
public import Privacy
public import ServiceLifecycle
import Store

/// Rotates the daily visitor-hash salt at UTC midnight and destroys yesterday's once the
/// overlap window has passed. Runs as a ServiceLifecycle service; the clock and the sleep are
/// injected so tests can drive days in milliseconds.
public struct SaltRotationService: Service {
    let keeper: SaltKeeper
    let logger: Logger
    let now: @Sendable () -> Date
    let sleep: @Sendable (Duration) async throws -> Void
    /// Longest single sleep, so a wall-clock jump (suspend, NTP step) is noticed soon.
    let maxSleep: Duration
    /// Marks deleted salts destroyed once a WAL truncation after their deletion is verified.
    let scrubber: Scrubber
    /// This process in the run log.
    let node: String

    public init(keeper: SaltKeeper, logger: Logger, scrubber: Scrubber, node: String = JobScheduler.processNode(),
                now: @escaping @Sendable () -> Date = { Date() }, maxSleep: Duration = .seconds(60),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.node = node
        self.keeper = keeper
        self.logger = logger
        self.now = now
        self.sleep = sleep
        self.maxSleep = maxSleep
        self.scrubber = scrubber
    }

    /// What one pass did.
    public struct Pass: Sendable {
        /// Days whose salt row was deleted in this pass.
        public var deleted: [Int64]
        /// Days whose destruction was verified in this pass (these and earlier deletions).
        public var destroyed: [Int64]
        public var problems: [String]
    }

    /// One pass: store again what the store lost of the salts held (``SaltKeeper/restoreLost()``),
    /// make sure today's salt exists (its creation writes `salt_rotated`), delete what
    /// has expired, then have the scrubber verify every deletion still waiting (`salt_destroyed`).
    @discardableResult
    public func tick() async throws -> Pass {
        let t = now()
        let restored = try keeper.restoreLost()
        if !restored.isEmpty {
            logger.warning("salts the store had lost were stored again", metadata: ["days": "\(restored.map { String($0) }.joined(separator: ","))"])
        }
        try keeper.rotate(now: t)
        let deleted = try keeper.deleteExpired(now: t)
        let scrub = await scrubber.run(actor: "scheduler")
        if !scrub.salts.isEmpty {
            logger.info("salts destroyed", metadata: ["days": "\(scrub.salts.map { String($0) }.joined(separator: ","))"])
        }
        if !scrub.problems.isEmpty {
            logger.warning("salt destruction not verified yet; retried", metadata: ["problems": "\(scrub.problems.joined(separator: "; "))"])
        }
        return Pass(deleted: deleted, destroyed: scrub.salts, problems: scrub.problems)
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                var waiting = false
                // Recorded as a job run ("salt_rotation"): the jobs alert and /health see a failure.
                let at = Int64(now().timeIntervalSince1970 * 1000)
                do {
                    let pass = try await tick()
                    waiting = !pass.problems.isEmpty
                    try? keeper.recordRun(at: at, node: node, detail: waiting ? "destruction not verified yet: " + pass.problems.joined(separator: "; ")
                                                                 : "\(pass.deleted.count) salt(s) deleted, \(pass.destroyed.count) destroyed")
                } catch {
                    logger.error("salt rotation failed", metadata: ["error": "\(error)"])
                    try? keeper.recordRun(at: at, node: node, detail: "failed: \(error)")
                }
                let t = now()
                // A destruction that could not be verified is retried within a minute.
                let wait = waiting ? 5 : keeper.nextDeadline(after: t).timeIntervalSince(t)
                let duration = min(Duration.milliseconds(Int64(max(wait, 0.001) * 1000) + 1), maxSleep)
                do { try await sleep(duration) } catch is CancellationError { return }
            }
        }
    }
}
