public import Foundation
public import Logging
public import Privacy
public import ServiceLifecycle

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

    public init(keeper: SaltKeeper, logger: Logger, now: @escaping @Sendable () -> Date = { Date() },
                maxSleep: Duration = .seconds(60),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.keeper = keeper
        self.logger = logger
        self.now = now
        self.sleep = sleep
        self.maxSleep = maxSleep
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
