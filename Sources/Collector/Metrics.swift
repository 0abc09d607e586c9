public import Foundation
public import ServiceLifecycle
public import Traffic
import Synchronization

/// Why an event was not stored. Counted per reason in /metrics and returned to the sender.
public enum DropReason: String, Sendable, CaseIterable {
    case bot
    case rateLimited = "rate_limited"
    case consentDenied = "consent_denied"
    case consentMissing = "consent_missing"
    case optOutSignal = "opt_out_signal"
    case duplicate
    case originNotAllowed = "origin_not_allowed"
    /// The day's salt could not be created or stored; nothing unsalted is ever stored instead.
    case saltUnavailable = "salt_unavailable"
}

/// A counter or gauge that many threads update.
public final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    public init() {}
    public func add(_ n: Int = 1) { atomic.add(n, ordering: .relaxed) }
    public var value: Int { atomic.load(ordering: .relaxed) }
}

/// A fixed-bucket histogram with lock-free observation.
public final class Histogram: Sendable {
    public let bounds: [Double]
    private let counts: [Counter]
    private let total = Counter()
    /// Sum in microunits, to stay integral.
    private let sumMicro = Counter()

    public init(bounds: [Double]) {
        self.bounds = bounds
        counts = (0...bounds.count).map { _ in Counter() }
    }

    public func observe(_ value: Double) {
        var i = 0
        while i < bounds.count && value > bounds[i] { i += 1 }
        counts[i].add()
        total.add()
        sumMicro.add(Int(value * 1_000_000))
    }

    public var count: Int { total.value }

    /// Upper bound of the bucket holding quantile `q` (an estimate good to one bucket).
    public func quantile(_ q: Double) -> Double? {
        let n = count
        guard n > 0 else { return nil }
        let target = Int((Double(n) * q).rounded(.up))
        var seen = 0
        for (i, c) in counts.enumerated() {
            seen += c.value
            if seen >= target { return i < bounds.count ? bounds[i] : bounds.last.map { $0 * 2 } }
        }
        return bounds.last
    }

    func render(_ name: String, help: String, into out: inout String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        var cumulative = 0
        for (i, bound) in bounds.enumerated() {
            cumulative += counts[i].value
            out += "\(name)_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        cumulative += counts[bounds.count].value
        out += "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n"
        out += "\(name)_sum \(Double(sumMicro.value) / 1_000_000)\n"
        out += "\(name)_count \(cumulative)\n"
    }
}

/// Pipeline and writer metrics, rendered in the Prometheus text format at /metrics.
public final class CollectorMetrics: Sendable {
    public let received = Counter()
    public let accepted = Counter()
    private let dropped: [Counter] = DropReason.allCases.map { _ in Counter() }
    private let botDropped: [Counter] = BotLayer.allCases.map { _ in Counter() }
    private let rejected = Mutex<[String: Int]>([:])
    private let webhooks = PairCounter()
    public let queueDepth = Counter()
    public let writeErrors = Counter()
    public let batchSize = Histogram(bounds: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000])
    public let commitSeconds = Histogram(bounds: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5])
    /// Checkpoints the writer finished between transactions (see ``EventWriter/requestCheckpoint()``).
    public let writerCheckpointSeconds = Histogram(bounds: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5])

    public init() {}

    public func drop(_ reason: DropReason, count: Int = 1) {
        dropped[DropReason.allCases.firstIndex(of: reason)!].add(count)
    }

    /// Events dropped as bots, by the layer that decided.
    public func botDrop(_ layer: BotLayer, count: Int) {
        botDropped[BotLayer.allCases.firstIndex(of: layer)!].add(count)
    }

    public func botDropCount(_ layer: BotLayer) -> Int {
        botDropped[BotLayer.allCases.firstIndex(of: layer)!].value
    }

    public func droppedCount(_ reason: DropReason) -> Int {
        dropped[DropReason.allCases.firstIndex(of: reason)!].value
    }

    /// A webhook delivery by provider and outcome (stored, duplicate, ignored, bad_signature,
    /// stale, malformed, unknown_site, not_configured, error).
    public func webhook(provider: String, outcome: String) { webhooks.add(provider, outcome) }

    /// Every (provider, outcome, count) seen since start.
    public var webhookCounts: [(provider: String, outcome: String, count: Int)] { webhooks.counts.map { ($0.0, $0.1, $0.2) } }

    public func webhookCount(provider: String, outcome: String) -> Int { webhooks.count(provider, outcome) }

    private let deliveries = PairCounter()

    /// A destination delivery attempt by kind and outcome (sent, not_found, skipped, retry, dead).
    public func delivery(kind: String, outcome: String) { deliveries.add(kind, outcome) }

    /// Every (kind, outcome, count) seen since start.
    public var deliveryCounts: [(kind: String, outcome: String, count: Int)] { deliveries.counts.map { ($0.0, $0.1, $0.2) } }

    /// A request refused before its events were looked at (400, 404, 413, 415, 429, 503).
    public func reject(status: Int) {
        rejected.withLock { $0[String(status), default: 0] += 1 }
    }

    private let history = Mutex<[MetricsSample]>([])

    /// Records the counters now; the pipeline-health page shows the differences per minute (last 60).
    public func sample(at date: Date) {
        let snapshot = MetricsSample(
            at: date, received: received.value, accepted: accepted.value,
            dropped: Dictionary(uniqueKeysWithValues: DropReason.allCases.map { ($0.rawValue, droppedCount($0)) }),
            rejected: rejected.withLock { $0.values.reduce(0, +) }, writeErrors: writeErrors.value,
            webhookFailures: webhooks.counts.filter { !["stored", "duplicate", "ignored"].contains($0.1) }.reduce(0) { $0 + $1.2 })
        history.withLock { h in
            h.append(snapshot)
            if h.count > 61 { h.removeFirst(h.count - 61) }
        }
    }

    public var samples: [MetricsSample] { history.withLock { $0 } }

    public func render(extra: String = "") -> String {
        var out = ""
        out += "# HELP candor_events_received_total Events parsed from accepted requests.\n# TYPE candor_events_received_total counter\n"
        out += "candor_events_received_total \(received.value)\n"
        out += "# HELP candor_events_accepted_total Events committed to the database.\n# TYPE candor_events_accepted_total counter\n"
        out += "candor_events_accepted_total \(accepted.value)\n"
        out += "# HELP candor_events_dropped_total Events not stored, by reason.\n# TYPE candor_events_dropped_total counter\n"
        for (i, reason) in DropReason.allCases.enumerated() {
            out += "candor_events_dropped_total{reason=\"\(reason.rawValue)\"} \(dropped[i].value)\n"
        }
        out += "# HELP candor_bot_drops_total Events dropped as bots, by the layer that decided.\n# TYPE candor_bot_drops_total counter\n"
        for (i, layer) in BotLayer.allCases.enumerated() {
            out += "candor_bot_drops_total{layer=\"\(layer.rawValue)\"} \(botDropped[i].value)\n"
        }
        out += "# HELP candor_requests_rejected_total Requests refused whole, by HTTP status.\n# TYPE candor_requests_rejected_total counter\n"
        for (status, n) in rejected.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            out += "candor_requests_rejected_total{status=\"\(status)\"} \(n)\n"
        }
        out += "# HELP candor_writer_queue_depth Events waiting for the writer.\n# TYPE candor_writer_queue_depth gauge\n"
        out += "candor_writer_queue_depth \(queueDepth.value)\n"
        out += "# HELP candor_writer_errors_total Batches that failed to commit.\n# TYPE candor_writer_errors_total counter\n"
        out += "candor_writer_errors_total \(writeErrors.value)\n"
        batchSize.render("candor_writer_batch_size", help: "Events per committed transaction.", into: &out)
        commitSeconds.render("candor_writer_commit_seconds", help: "Time to write and commit one batch.", into: &out)
        writerCheckpointSeconds.render("candor_writer_checkpoint_seconds",
                                       help: "Checkpoints the writer finished between batches so that the WAL starts over.", into: &out)
        out += "# HELP candor_webhooks_total Webhook deliveries by provider and outcome.\n# TYPE candor_webhooks_total counter\n"
        for (provider, outcome, n) in webhooks.counts {
            out += "candor_webhooks_total{provider=\"\(provider)\",outcome=\"\(outcome)\"} \(n)\n"
        }
        out += "# HELP candor_deliveries_total Destination delivery attempts by kind and outcome.\n# TYPE candor_deliveries_total counter\n"
        for d in deliveryCounts {
            out += "candor_deliveries_total{kind=\"\(d.kind)\",outcome=\"\(d.outcome)\"} \(d.count)\n"
        }
        out += extra
        return out
    }
}

/// Cumulative counters at one moment.
public struct MetricsSample: Sendable, Equatable {
    public let at: Date
    public let received: Int
    public let accepted: Int
    public let dropped: [String: Int]
    /// Requests refused whole (4xx/5xx).
    public let rejected: Int
    public let writeErrors: Int
    /// Webhook deliveries that were refused or failed.
    public let webhookFailures: Int
}

/// Samples the collector's counters every minute for the pipeline-health page.
public struct MetricsSampler: Service {
    let metrics: CollectorMetrics
    let now: @Sendable () -> Date

    public init(metrics: CollectorMetrics, now: @escaping @Sendable () -> Date = { Date() }) {
        self.metrics = metrics
        self.now = now
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                metrics.sample(at: now())
                do { try await Task.sleep(for: .seconds(60)) } catch is CancellationError { return }
            }
        }
    }
}

/// Counts by two labels (provider or kind, and outcome).
final class PairCounter: Sendable {
    private let counts_ = Mutex<[String: Int]>([:])

    func add(_ a: String, _ b: String) { counts_.withLock { $0["\(a)\u{0}\(b)", default: 0] += 1 } }

    func count(_ a: String, _ b: String) -> Int { counts_.withLock { $0["\(a)\u{0}\(b)"] ?? 0 } }

    /// Every (a, b, count), sorted.
    var counts: [(String, String, Int)] {
        counts_.withLock { $0 }.sorted { $0.key < $1.key }.map { key, n in
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false)
            return (String(parts[0]), String(parts[1]), n)
        }
    }
}
