public import Foundation
public import Store
import Storage
import Privacy
import Synchronization

/// What an alert rule watches. Site rules: a silent site, a traffic spike or drop; install rules:
/// deletion requests near their deadline, low disk space, erasures whose bytes are not gone yet,
/// webhooks refused for their signature, events not written, conversions a destination gave up
/// on, an old GeoIP database, and scheduled jobs (salt rotation, purge, rollups…) that failed.
public enum AlertKind: String, Sendable, CaseIterable {
    /// No event for `threshold` hours (the pixel removed or broken), once the site had events.
    case silent
    /// The last whole hour's pageviews at least `threshold` times the same hour's average on the
    /// same weekday of the four weeks before (and at least 10 more).
    case spike
    /// The last whole hour's pageviews at most the baseline divided by `threshold` (baseline ≥ 10).
    case drop
    /// Open deletion requests due within `threshold` days, or overdue.
    case deadline
    /// Free space on the data directory's file system under `threshold` percent.
    case disk
    /// A deleted salt or a purge whose bytes are not verified gone (WAL truncation) after `threshold` hours.
    case erasure
    /// At least `threshold` webhook requests refused for a bad signature within the last hour (this process).
    case webhooks
    /// At least `threshold` events the writer failed to store within the last hour (this process).
    case writes
    /// At least `threshold` conversions a destination gave up on (dead-lettered) within the last hour.
    case destinations
    /// A GeoIP database built more than `threshold` days ago.
    case geoip
    /// At least `threshold` scheduled jobs (the salt rotation, purge, rollups, deletion requests…) whose last run failed.
    case jobs

    public var siteScoped: Bool { self == .silent || self == .spike || self == .drop }

    /// What the threshold means, for forms and the command line.
    public var thresholdMeaning: String {
        switch self {
        case .silent: "hours without an event"
        case .spike: "times the usual hour"
        case .drop: "times below the usual hour"
        case .deadline: "days before the deadline"
        case .disk: "percent free"
        case .erasure: "hours unverified"
        case .webhooks: "bad signatures in an hour"
        case .writes: "events not written in an hour"
        case .destinations: "conversions given up on in an hour"
        case .geoip: "days since the database was built"
        case .jobs: "jobs failing"
        }
    }
}

/// What only the running process knows, read at each evaluation: counters since it started and
/// the GeoIP databases it loaded.
public struct AlertSignals: Sendable {
    /// Webhook requests refused for a bad signature since start.
    public var badSignatures: Int
    /// Events the writer failed to store since start.
    public var writeErrors: Int
    /// Each loaded GeoIP database's name and build time.
    public var geoDatabases: [(name: String, built: Date)]
    /// The jobs this process schedules (nil: every job with a recorded run): a job that failed
    /// once and is no longer scheduled does not keep the `jobs` rule firing.
    public var scheduledJobs: Set<String>?

    public init(badSignatures: Int = 0, writeErrors: Int = 0, geoDatabases: [(name: String, built: Date)] = [], scheduledJobs: Set<String>? = nil) {
        self.badSignatures = badSignatures; self.writeErrors = writeErrors; self.geoDatabases = geoDatabases; self.scheduledJobs = scheduledJobs
    }
}

/// A counter of this process (0 when it started) sampled at most once a minute, to tell how much
/// it grew over the last hour.
final class CounterWindow: Sendable {
    private let samples: Mutex<[(at: Int64, value: Int)]>

    /// `started`: when the process started, with the counter at 0.
    init(started: Int64) { samples = Mutex([(started, 0)]) }

    /// Records `value` at `t`; returns its growth since the baseline: the latest sample at least an
    /// hour old, or the oldest one (the process's start) when there is none; and that sample's time.
    func growth(_ value: Int, at t: Int64) -> (count: Int, since: Int64) {
        samples.withLock { s in
            // At most one sample a minute is kept (about 61 over the hour); `value` itself is always the count now.
            if let last = s.last, last.at <= t - 60_000 { s.append((t, value)) }
            while s.count > 1 && s[1].at <= t - 3_600_000 { s.removeFirst() }
            return (max(0, value - s[0].value), s[0].at)
        }
    }
}

/// Finds whether each rule's condition holds, fires and resolves rules (once each, then quiet for
/// their cooldown) and hands what to say to a ``Notifier``.
public struct AlertEngine: Sendable {
    let database: AppDatabase
    let dataDirectory: String
    let now: @Sendable () -> Date
    let notifier: Notifier
    let signals: @Sendable () -> AlertSignals
    let badSignatures: CounterWindow
    let writeErrors: CounterWindow

    public init(database: AppDatabase, dataDirectory: String, notifier: Notifier, now: @escaping @Sendable () -> Date = { Date() },
                signals: @escaping @Sendable () -> AlertSignals = { AlertSignals() }) {
        self.database = database; self.dataDirectory = dataDirectory; self.notifier = notifier; self.now = now; self.signals = signals
        let started = Int64(now().timeIntervalSince1970 * 1000)
        badSignatures = CounterWindow(started: started)
        writeErrors = CounterWindow(started: started)
    }

    /// The condition's message when it holds, nil when it does not.
    public func condition(_ rule: AlertRule, at t: Int64) throws -> String? {
        guard let kind = AlertKind(rawValue: rule.kind) else { return nil }
        let site = try rule.siteID.flatMap { try database.site(id: $0) }
        let name = site?.name ?? "the install"
        switch kind {
        case .silent:
            guard let site, site.archivedAt == nil, let newest = try database.newestEvent(site: site.id) else { return nil }
            let hours = Double(t - newest) / 3_600_000
            guard hours >= rule.threshold else { return nil }
            return "\(name): no event for \(Int(hours)) hours (the last at \(ISO.string(newest))). Is the snippet still on the pages?"
        case .spike, .drop:
            guard let site else { return nil }
            let hourEnd = t / 3_600_000 * 3_600_000, hourStart = hourEnd - 3_600_000
            let count = try database.pageviewCount(site: site.id, from: hourStart, to: hourEnd)
            // The same hour on the same weekday of the four weeks before, those the site existed in.
            let weeks = (1...4).map { hourStart - Int64($0) * 7 * 86_400_000 }.filter { $0 >= Int64(site.createdAt.timeIntervalSince1970 * 1000) }
            guard weeks.count >= 2 else { return nil }
            let baseline = Double(try weeks.reduce(0) { $0 + (try database.pageviewCount(site: site.id, from: $1, to: $1 + 3_600_000)) }) / Double(weeks.count)
            let fires = kind == .spike ? Double(count) >= rule.threshold * max(baseline, 1) && Double(count) - baseline >= 10
                : baseline >= 10 && Double(count) <= baseline / rule.threshold
            guard fires else { return nil }
            let top = try database.topOfHour(site: site.id, from: hourStart, to: hourEnd)
            let list = { (rows: [(String, Int)]) in rows.map { "\($0.0) (\($0.1))" }.joined(separator: ", ") }
            return "\(name): \(count) pageviews from \(ISO.string(hourStart)) to \(ISO.string(hourEnd)), against \(String(format: "%.1f", baseline)) "
                + "on average in that hour of the same weekday over the last \(weeks.count) weeks (\(kind == .spike ? "a spike" : "a drop")). "
                + "Top pages: \(top.pages.isEmpty ? "none" : list(top.pages)). Top sources: \(top.sources.isEmpty ? "none" : list(top.sources))."
        case .deadline:
            let open = try database.pendingPrivacyRequests() + database.erasingPrivacyRequests()
            let due = open.filter { Double($0.deadlineAt - t) <= rule.threshold * 86_400_000 }
            guard let first = due.min(by: { $0.deadlineAt < $1.deadlineAt }) else { return nil }
            let overdue = due.filter { $0.deadlineAt < t }.count
            return "\(due.count) deletion request(s) due within \(Int(rule.threshold)) days, \(overdue) overdue; the earliest, \(first.id), is due \(ISO.string(first.deadlineAt))."
        case .disk:
            var s = statvfs()
            guard statvfs(dataDirectory, &s) == 0, s.f_blocks > 0 else { return "The data directory's free space cannot be read." }
            let free = Double(s.f_bavail) / Double(s.f_blocks) * 100
            guard free < rule.threshold else { return nil }
            return "Free space where the database lives: \(String(format: "%.1f", free)) % (\(UInt64(s.f_bavail) * UInt64(s.f_frsize) / 1_048_576) MiB), under \(rule.threshold) %."
        case .erasure:
            let limit = t - Int64(rule.threshold * 3_600_000)
            let purges = try database.unverifiedPurgeRuns().filter { ($0.finishedAt ?? $0.startedAt) < limit }
            let salts = try database.saltDestructionsWaiting(before: limit)
            guard !purges.isEmpty || salts > 0 else { return nil }
            return "Erasures not verified after \(Int(rule.threshold)) hours: \(purges.count) purge run(s), \(salts) deleted salt(s) whose bytes may still be in the write-ahead log (a long read holds it?)."
        case .webhooks:
            let (n, since) = badSignatures.growth(signals().badSignatures, at: t)
            guard Double(n) >= rule.threshold else { return nil }
            return "\(n) webhook request(s) refused for a bad signature since \(ISO.string(since)) (a rotated secret not updated here, or someone forging). /health lists them by provider."
        case .writes:
            let (n, since) = writeErrors.growth(signals().writeErrors, at: t)
            guard Double(n) >= rule.threshold else { return nil }
            return "\(n) event(s) could not be written since \(ISO.string(since)) (their senders got an error). Is the disk full or the database locked by another process?"
        case .destinations:
            let dead = try database.deadDeliveries(since: t - 3_600_000)
            let n = dead.reduce(0) { $0 + $1.count }
            guard Double(n) >= rule.threshold else { return nil }
            let names = try dead.map { "\(try database.site(id: $0.site)?.name ?? $0.site): \($0.count)" }.joined(separator: ", ")
            return "\(n) conversion(s) given up on by destinations within the last hour (\(names)); the site's Destinations page can replay them."
        case .geoip:
            let old = signals().geoDatabases.filter { Double(t - Int64($0.built.timeIntervalSince1970 * 1000)) >= rule.threshold * 86_400_000 }
            guard !old.isEmpty else { return nil }
            return "GeoIP database(s) older than \(Int(rule.threshold)) days: "
                + old.map { "\($0.name) built \(ISO.string(Int64($0.built.timeIntervalSince1970 * 1000)))" }.joined(separator: ", ") + ". Update them (geoipupdate) and restart."
        case .jobs:
            let scheduled = signals().scheduledJobs
            let failing = try database.jobRuns().filter { run in run.detail?.hasPrefix("failed") == true && (scheduled?.contains(run.name) ?? true) }
            guard !failing.isEmpty, Double(failing.count) >= rule.threshold else { return nil }
            return "Scheduled job(s) failing: " + failing.map { "\($0.name) (\($0.detail?.prefix(200) ?? ""))" }.joined(separator: "; ") + "."
        }
    }

    /// Evaluates every rule once; returns the rules that fired and resolved.
    @discardableResult
    public func tick() async throws -> (fired: [String], resolved: [String]) {
        let t = Int64(now().timeIntervalSince1970 * 1000)
        var fired: [String] = [], resolved: [String] = []
        for rule in try database.alertRules() {
            let message = try condition(rule, at: t)
            if let message, rule.firingSince == nil {
                if let last = rule.lastChangeAt, t - last < Int64(rule.cooldownMinutes) * 60_000 { continue }
                guard try database.transaction({ tx in try tx.changeAlertState(rule: rule, firing: true, at: t, message: message) }) else { continue }
                fired.append(rule.id)
                let delivered = await notifier.send(Alert(rule: rule, firing: true, message: message, at: t))
                try database.noteAlertDelivery(rule: rule.id, at: t, delivered: delivered)
            } else if message == nil, rule.firingSince != nil {
                let text = "Resolved: \(AlertKind(rawValue: rule.kind)?.rawValue ?? rule.kind) on \(try rule.siteID.flatMap { try database.site(id: $0)?.name } ?? "the install") "
                    + "no longer holds (it fired at \(ISO.string(rule.firingSince!)))."
                guard try database.transaction({ tx in try tx.changeAlertState(rule: rule, firing: false, at: t, message: text) }) else { continue }
                resolved.append(rule.id)
                let delivered = await notifier.send(Alert(rule: rule, firing: false, message: text, at: t))
                try database.noteAlertDelivery(rule: rule.id, at: t, delivered: delivered)
            }
        }
        return (fired, resolved)
    }
}

/// One alert to send.
public struct Alert: Sendable {
    public var rule: AlertRule
    public var firing: Bool
    public var message: String
    public var at: Int64

    public var subject: String {
        "[Candor] \(firing ? "Alert" : "Resolved"): \(rule.kind)"
    }
}
