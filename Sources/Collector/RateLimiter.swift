import Synchronization

/// Token buckets per site and per (keyed-hashed) client address. Only the hash of the address is
/// kept, in memory, and only while its bucket is not full.
public final class RateLimiter: Sendable {
    public struct Limits: Sendable {
        /// Sustained events per second and burst size.
        public var perSite: (rate: Double, burst: Double)
        public var perClient: (rate: Double, burst: Double)
        public init(perSite: (rate: Double, burst: Double) = (2000, 10_000),
                    perClient: (rate: Double, burst: Double) = (20, 200)) {
            self.perSite = perSite; self.perClient = perClient
        }
    }

    private struct Bucket { var tokens: Double; var updated: Double }
    private struct State {
        var sites: [String: Bucket] = [:]
        var clients: [Int64: Bucket] = [:]
        var lastSweep: Double = 0
    }

    public let limits: Limits
    /// Most client buckets held: past it, full ones are swept, then the longest-unseen half goes.
    public let capacity: Int
    private let state = Mutex(State())

    public init(limits: Limits = Limits(), capacity: Int = 100_000) {
        self.limits = limits
        self.capacity = capacity
    }

    /// Takes `count` tokens from both buckets, or none. Returns nil when allowed, else the
    /// number of seconds after which the request can be retried.
    public func admit(site: String, client: Int64, count: Int, now: Double) -> Int? {
        let n = Double(count)
        return state.withLock { s in
            if now - s.lastSweep > 60 { sweep(&s, now: now) }
            if s.clients[client] == nil && s.clients.count >= capacity {
                sweep(&s, now: now)
                if s.clients.count >= capacity {
                    let keep = s.clients.sorted { $0.value.updated > $1.value.updated }.prefix(capacity / 2)
                    s.clients = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
                }
            }
            var siteBucket = Self.refill(s.sites[site], rate: limits.perSite.rate, burst: limits.perSite.burst, now: now)
            var clientBucket = Self.refill(s.clients[client], rate: limits.perClient.rate, burst: limits.perClient.burst, now: now)
            guard siteBucket.tokens >= n, clientBucket.tokens >= n else {
                let siteWait = siteBucket.tokens >= n ? 0 : (n - siteBucket.tokens) / limits.perSite.rate
                let clientWait = clientBucket.tokens >= n ? 0 : (n - clientBucket.tokens) / limits.perClient.rate
                s.sites[site] = siteBucket
                s.clients[client] = clientBucket
                return max(1, Int(max(siteWait, clientWait).rounded(.up)))
            }
            siteBucket.tokens -= n
            clientBucket.tokens -= n
            s.sites[site] = siteBucket
            s.clients[client] = clientBucket
            return nil
        }
    }

    private static func refill(_ bucket: Bucket?, rate: Double, burst: Double, now: Double) -> Bucket {
        guard var b = bucket else { return Bucket(tokens: burst, updated: now) }
        b.tokens = min(burst, b.tokens + max(0, now - b.updated) * rate)
        b.updated = now
        return b
    }

    /// Client buckets held (tests: memory stays bounded).
    public var clientCount: Int { state.withLock { $0.clients.count } }

    /// Forgets buckets that have refilled completely (they carry no information).
    private func sweep(_ s: inout State, now: Double) {
        s.lastSweep = now
        s.clients = s.clients.filter { _, b in b.tokens + (now - b.updated) * limits.perClient.rate < limits.perClient.burst }
        s.sites = s.sites.filter { _, b in b.tokens + (now - b.updated) * limits.perSite.rate < limits.perSite.burst }
    }
}
