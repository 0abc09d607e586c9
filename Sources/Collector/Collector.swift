public import Consent
public import Foundation
public import Geo
public import Logging
public import Privacy
public import Store
public import Traffic
import Synchronization

/// Everything ingestion needs, wired once at start-up and shared by all requests.
public final class Collector: Sendable {
    public let database: AppDatabase
    public let policies: PolicyBook
    public let pipeline: Pipeline
    public let writer: EventWriter
    public let metrics: CollectorMetrics
    public let addresses: ClientAddressResolver
    public let logger: Logger
    /// Wall clock, injectable for tests.
    public let now: @Sendable () -> Date

    private struct SiteCache {
        var sites: [String: Site] = [:]
        var loadedAt: Date = .distantPast
    }
    private let siteCache = Mutex(SiteCache())
    /// Unknown site ids reload the site list at most this often (so `candor sites add` is seen
    /// by a running server without letting unknown ids hammer the database).
    private let siteReloadInterval: TimeInterval = 2
    private let siteRefreshInterval = Site.collectorRefresh

    public init(database: AppDatabase, policies: PolicyBook, geo: any GeoLookup, salts: SaltKeeper,
                subjects: SubjectHasher, limiter: RateLimiter, addresses: ClientAddressResolver,
                logger: Logger, traffic: TrafficClassifier = .installed, contactBox: SecretBox? = nil,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database
        self.policies = policies
        self.metrics = CollectorMetrics()
        self.pipeline = Pipeline(deps: .init(geo: geo, salts: salts, subjects: subjects, limiter: limiter, traffic: traffic, contactBox: contactBox))
        self.writer = EventWriter(database: database, metrics: metrics, logger: logger)
        self.addresses = addresses
        self.logger = logger
        self.now = now
    }

    /// The site and its policy, or nil if the id is unknown or the site is archived: an archived
    /// site collects nothing (events, consent records and webhooks answer as for an unknown site).
    /// `archived` admits archived sites, for what a visitor may still ask of them (self-service:
    /// seeing and erasing one's data outlasts collection).
    public func site(_ id: String, archived: Bool = false) -> (Site, Policy)? {
        let now = now()
        var site = siteCache.withLock { $0.sites[id] }
        // Unknown ids reload after `siteReloadInterval`; known ones every `siteRefreshInterval`, so
        // domain and policy changes made in the dashboard reach the collector.
        let age = siteCache.withLock { now.timeIntervalSince($0.loadedAt) }
        if (site == nil && age >= siteReloadInterval) || age >= siteRefreshInterval, let all = try? database.sites() {
            let map = Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            siteCache.withLock { $0.sites = map; $0.loadedAt = now }
            site = map[id]
        }
        guard let site, archived || site.archivedAt == nil else { return nil }
        return (site, policies[site.policy] ?? .default)
    }
}
