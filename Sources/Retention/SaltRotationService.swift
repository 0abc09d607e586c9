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
    /// Where rotations and destructions are recorded (salt_rotated, salt_destroyed).
    let audit: AuditLog?

    public init(keeper: SaltKeeper, logger: Logger, audit: AuditLog? = nil, now: @escaping @Sendable () -> Date = { Date() },
                maxSleep: Duration = .seconds(60),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.keeper = keeper
        self.logger = logger
        self.now = now
        self.sleep = sleep
        self.maxSleep = maxSleep
        self.audit = audit
    }

    /// One pass: make sure today's salt exists, destroy what has expired.
    @discardableResult
    public func tick() throws -> [Int64] {
        let t = now()
        try keeper.rotate(now: t)
        let destroyed = try keeper.destroyExpired(now: t)
        if !destroyed.isEmpty {
            logger.info("salts destroyed", metadata: ["days": "\(destroyed.map { String($0) }.joined(separator: ","))"])
        }
        if let audit {
            let today = utcDay(t)
            let ms = Int64(t.timeIntervalSince1970 * 1000)
            // The salt may have been created by the first event after midnight; the audit entry is
            // written once per day by whoever notices first here.
            let lastDay = try audit.database.lastRun(job: "salt_rotation").map { $0 / 86_400_000 }
            if lastDay.map({ $0 < today }) ?? true {
                try audit.record(actor: "scheduler", action: "salt_rotated", detail: ["day": .int(today)])
                try audit.database.recordRun(job: "salt_rotation", at: ms, detail: "salt of day \(today) in use")
            }
            for day in destroyed {
                try audit.record(actor: "scheduler", action: "salt_destroyed", detail: ["day": .int(day)])
            }
        }
        return destroyed
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try tick() } catch { logger.error("salt rotation failed", metadata: ["error": "\(error)"]) }
                let t = now()
                let wait = keeper.nextDeadline(after: t).timeIntervalSince(t)
                let duration = min(Duration.milliseconds(Int64(max(wait, 0.001) * 1000) + 1), maxSleep)
                do { try await sleep(duration) } catch is CancellationError { return }
            }
        }
    }
}
