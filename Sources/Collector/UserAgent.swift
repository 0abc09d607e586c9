import Privacy
import Synchronization
import Traffic

/// A user agent reduced to what is stored: browser family + major version, OS family, device class.
/// The full string is never kept.
struct ReducedUserAgent: Equatable, Sendable {
    var browser: String
    var browserVersion: String?
    var os: String
    var device: String

    init(browser: String, browserVersion: String?, os: String, device: String) {
        self.browser = browser; self.browserVersion = browserVersion; self.os = os; self.device = device
    }

    init(_ verdict: AgentVerdict) {
        self.init(browser: verdict.browser, browserVersion: verdict.browserVersion, os: verdict.os, device: verdict.device.rawValue)
    }
}

/// What the pipeline derives from a user agent (bot layer or none, the reduced form), remembered
/// per user agent: the same few strings arrive again and again. Entries are keyed by a keyed hash
/// under a per-process random key, so the strings themselves are not kept past their request.
/// Speculative loads are decided per request (a header), not here.
final class UserAgentCache: Sendable {
    struct Entry: Sendable { let bot: BotLayer?; let reduced: ReducedUserAgent }
    private let key = SecretBytes(random: 32)
    private let entries = Mutex<[Int64: Entry]>([:])
    let capacity: Int
    let traffic: TrafficClassifier

    init(traffic: TrafficClassifier, capacity: Int = 4096) { self.traffic = traffic; self.capacity = capacity }

    /// Entries held (tests).
    var count: Int { entries.withLock { $0.count } }

    func lookup(_ userAgent: String) -> Entry {
        let id = key.withBytes { k in Array(userAgent.utf8).withUnsafeBytes { Sodium.keyedHash64(key: k, message: $0) } }
        if let hit = entries.withLock({ $0[id] }) { return hit }
        let verdict = traffic.agent(userAgent)
        let entry = Entry(bot: verdict.bot, reduced: ReducedUserAgent(verdict))
        entries.withLock { e in
            if e.count >= capacity { e.removeAll(keepingCapacity: true) }
            e[id] = entry
        }
        return entry
    }
}
