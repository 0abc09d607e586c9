public import Collector
import Actions
import Admin
import Consent
import Destinations
import Foundation
import Geo
public import Hummingbird
import Integrations
import JSONOutput
public import Logging
public import Notify
import NIOCore
import Privacy
import Provisioning
import Retention
import ServiceLifecycle
import Storage
import Store
import Synchronization
public import Traffic

/// Everything `candor serve` is given (its options), for ``buildApplication(_:logger:)``.
public struct ServerConfiguration: Sendable {
    public var dataDirectory: String
    public var policiesDirectory: String
    public var publicDirectory: String
    public var host = "127.0.0.1"
    public var port = 8080
    public var geoipCity: String?
    public var geoipASN: String?
    public var trustedProxies: [CIDR] = []
    /// Sustained events/s per site (burst 5×) and per client address (burst 10×).
    public var rateSite: Double = 2000
    public var rateClient: Double = 20
    /// Minutes between runs of the deletion-request processor.
    public var requestsEvery: Double = 5
    /// Hours between retention purges; 0: none.
    public var purgeEvery: Double = 6
    /// Seconds between rollup runs, report checks and alert evaluations.
    public var rollupsEvery: Double = 60
    public var reportsEvery: Double = 600
    public var alertsEvery: Double = 60
    public var secureCookies = false
    public var metricsToken: String?
    /// Seconds a connection may wait for a request head, and take to send a body.
    public var idleTimeout = 30
    public var bodyTimeout = 30
    public var datasets = DatasetPaths()
    /// pygal_maps_world's worldmap.svg, or "none".
    public var worldMap = WorldMap.defaultSource
    /// Seconds before a failed delivery's first retry; attempts before it is dead-lettered.
    public var deliveryRetryBase: Double = 10
    public var deliveryAttempts = 8
    /// Sends alert and report e-mail (nil: none).
    public var mailer: Mailer?

    public init(dataDirectory: String, policiesDirectory: String, publicDirectory: String) {
        self.dataDirectory = dataDirectory; self.policiesDirectory = policiesDirectory; self.publicDirectory = publicDirectory
    }

    public var databasePath: String { (dataDirectory as NSString).appendingPathComponent("candor.sqlite") }
}

/// A configuration that cannot be served; the description says what to change.
public struct ServerConfigurationError: Error, CustomStringConvertible {
    public let description: String
    /// A value given on the command line is wrong (`candor serve` answers with its usage then).
    public var invalidOption = false
}

/// The whole server `candor serve` runs: the collector, the dashboard, the APIs and every
/// background service (writer, checkpoints, salt rotation, scheduled jobs, deliveries), wired
/// once here for the executable and the tests.
public func buildApplication(_ configuration: ServerConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
        let c = configuration
        let (host, port) = (c.host, c.port)
        let (geoipCity, geoipASN, rateSite, rateClient) = (c.geoipCity, c.geoipASN, c.rateSite, c.rateClient)
        let (requestsEvery, purgeEvery, rollupsEvery, reportsEvery, alertsEvery) = (c.requestsEvery, c.purgeEvery, c.rollupsEvery, c.reportsEvery, c.alertsEvery)
        let (deliveryRetryBase, deliveryAttempts, idleTimeout, bodyTimeout) = (c.deliveryRetryBase, c.deliveryAttempts, c.idleTimeout, c.bodyTimeout)
        let (metricsToken, secureCookies, publicDir, worldMapPath) = (c.metricsToken, c.secureCookies, c.publicDirectory, c.worldMap)
        try FileManager.default.createDirectory(atPath: c.dataDirectory, withIntermediateDirectories: true)
        let database = try AppDatabase(path: c.databasePath)
        let policies = try PolicyBook(directory: c.policiesDirectory)
        let geo: any GeoLookup
        if geoipCity != nil || geoipASN != nil {
            geo = try MaxMindGeo(cityPath: geoipCity, asnPath: geoipASN)
        } else {
            geo = NoGeo()
        }
        let salts = try SaltKeeper(database: database)
        let traffic: TrafficClassifier
        do { traffic = try TrafficClassifier(paths: c.datasets) } catch { throw ServerConfigurationError(description: "\(error)") }
        if let policy = policies.policies.values.sorted(by: { $0.name < $1.name }).first(where: \.dropDatacenterNetworks),
           traffic.datacenters == nil || geoipASN == nil {
            throw ServerConfigurationError(description: "policy \(policy.name) drops data-centre networks (bots.drop_datacenter_networks): "
                + "give --datacenter-asns FILE and --geoip-asn FILE (a MaxMind ASN database), or set it to false")
        }
        for dataset in traffic.datasets {
            logger.info("dataset", metadata: ["name": "\(dataset.name)", "package": "\(dataset.package) \(dataset.version)",
                                              "entries": "\(dataset.entries)", "path": "\(dataset.path)"])
        }
        // A key that does not open the stored credentials turns forwarding off, not the collector.
        let box: SecretBox?
        do { box = try SecretBox.load(directory: c.dataDirectory, database: database) } catch {
            logger.error("destinations are off", metadata: ["reason": "\(error)"])
            box = nil
        }
        let collector = Collector(
            database: database, policies: policies, geo: geo, salts: salts,
            subjects: try SubjectHasher(database: database),
            limiter: RateLimiter(limits: .init(perSite: (rateSite, rateSite * 5), perClient: (rateClient, rateClient * 10))),
            addresses: ClientAddressResolver(trustedProxies: c.trustedProxies), logger: logger, traffic: traffic, contactBox: box)
        let worldMap: WorldMap?
        do { worldMap = worldMapPath == "none" ? nil : try WorldMap.load(path: worldMapPath) } catch {
            throw ServerConfigurationError(description: "--world-map \(worldMapPath): \(error)", invalidOption: true)
        }
        if worldMap == nil && worldMapPath != "none" {
            logger.warning("no world map: the dashboard shows countries as a table only (make deps-run installs pygal_maps_world)",
                           metadata: ["world-map": "\(worldMapPath)"])
        }
        let assets: PublicAssets?
        do {
            assets = try PublicAssets(directory: publicDir,
                                      extra: worldMap.map { [("world.svg", "image/svg+xml", Array($0.svg.utf8))] } ?? [])
            logger.info("client assets", metadata: ["pixel": "\(assets!.assets["pixel.js"]!.versionedPath)"])
        } catch let error as PublicAssets.NotBuilt {
            // The sources are there but not their build: serving without the pixel would look
            // like a working install that counts nothing.
            throw ServerConfigurationError(description: error.description, invalidOption: true)
        } catch {
            assets = nil
            logger.warning("pixel.js not found: /pixel.js and /demo are not served", metadata: ["public-dir": "\(publicDir)"])
        }
        let office = PrivacyOffice(database: database, policies: policies, subjects: try SubjectHasher(database: database))
        try recordPolicyChanges(policies: policies, database: database, audit: office.audit)
        // This process in the job ledger's claims and run log.
        let node = JobScheduler.processNode()
        let rotation = SaltRotationService(keeper: salts, logger: logger, scrubber: office.scrubber, node: node)
        let purger = Purger(database: database, policies: policies, scrubber: office.scrubber)
        var jobs = [
            ScheduledJob(name: "deletion_requests", interval: .milliseconds(Int64(max(requestsEvery, 0.1) * 60_000))) {
                let report = await office.processOpenRequests(actor: "scheduler")
                if !report.failed.isEmpty || !report.problems.isEmpty { throw JobIncomplete(summary: report.summary) }
                return report.summary
            },
            // Deletions whose WAL truncation failed (a long read, another process's checkpoint) are retried every minute.
            ScheduledJob(name: "scrub", interval: .seconds(60)) {
                let report = await office.scrubber.run(actor: "scheduler")
                if !report.problems.isEmpty { throw JobIncomplete(summary: report.summary) }
                return report.summary
            },
        ]
        // Visits stored before channels existed get theirs (a second of work per run until none is left).
        jobs.append(ScheduledJob(name: "channel_backfill", interval: .seconds(10)) {
            try backfillChannels(database: database, referrers: traffic.referrers)
        })
        // Until the first rollup run has loaded the engine, views it does not hold answer "loading".
        database.facts.expectLoad()
        // Each process runs the rollups for itself (they load its analytics engine); every other
        // job runs once per period across processes.
        jobs.append(ScheduledJob(name: "rollups", interval: .milliseconds(Int64(max(rollupsEvery, 0.5) * 1000)), atStart: true,
                                 perProcess: true) {
            try RollupJob.run(database: database, now: Date())
        })
        if purgeEvery > 0 {
            jobs.append(ScheduledJob(name: "purge", interval: .milliseconds(Int64(purgeEvery * 3_600_000))) {
                let outcome = try await purger.run(actor: "scheduler")
                let summary = "\(outcome.lines.reduce(0) { $0 + $1.rows }) row(s) deleted or cleared"
                if !outcome.problems.isEmpty { throw JobIncomplete(summary: summary + "; " + outcome.problems.joined(separator: "; ")) }
                return summary
            })
        } else {
            logger.notice("scheduled purges are off (--purge-every 0): run candor purge yourself")
        }
        jobs.append(ScheduledJob(name: "deliveries_cleanup", interval: .seconds(3600)) {
            "\(try database.purgeDeliveries(now: Int64(Date().timeIntervalSince1970 * 1000))) delivery row(s) deleted"
        })
        let mailer = c.mailer
        if mailer == nil { logger.notice("no --smtp-url: alerts and reports are not sent by e-mail") }
        guard alertsEvery >= 0.5, alertsEvery <= 86_400 else { throw ServerConfigurationError(description: "--alerts-every is 0.5 to 86400 seconds") }
        // The jobs this process runs (filled in once the list is complete), for the `jobs` alert.
        let scheduledJobs = Mutex<Set<String>>([])
        let alerts = AlertEngine(database: database, dataDirectory: c.dataDirectory, notifier: Notifier(database: database, mailer: mailer, box: box, logger: logger,
                                                                                                   readsExactFigures: { user, site in
            readsExactFigures(user.role, policy: policies[site.policy] ?? .default)
        }), signals: {
            let m = collector.metrics, geo = collector.pipeline.deps.geo.status
            return AlertSignals(badSignatures: m.webhookCounts.filter { $0.outcome == "bad_signature" }.reduce(0) { $0 + $1.count },
                                writeErrors: m.writeErrors.value,
                                geoDatabases: geo.buildEpoch.map { [(name: "City database (\(geo.city))", built: $0)] } ?? [],
                                scheduledJobs: scheduledJobs.withLock { $0 })
        })
        // One process per period checks the alerts (their state is shared): the write-error,
        // signature and GeoIP signals are that process's own.
        jobs.append(ScheduledJob(name: "alerts", interval: .milliseconds(Int64(alertsEvery * 1000))) {
            let changed = try await alerts.tick()
            return "\(changed.fired.count) fired, \(changed.resolved.count) resolved"
        })
        if let mailer {
            let reports = ReportMaker(database: database, policies: policies)
            jobs.append(ScheduledJob(name: "reports", interval: .milliseconds(Int64(reportsEvery * 1000))) {
                let outcome = try await reports.sendDue(mailer: mailer)
                let summary = "\(outcome.sent) report(s) sent"
                if !outcome.failures.isEmpty { throw JobIncomplete(summary: summary + "; not sent: " + outcome.failures.joined(separator: "; ")) }
                return summary
            })
        }
        scheduledJobs.withLock { $0 = Set(jobs.map(\.name) + ["salt_rotation"]) }
        let scheduler = JobScheduler(ledger: database, jobs: jobs, logger: logger, node: node)
        guard deliveryRetryBase > 0, deliveryRetryBase <= 3600, (1...100).contains(deliveryAttempts) else {
            throw ServerConfigurationError(description: "--delivery-retry-base is 0–3600 seconds and --delivery-attempts 1–100")
        }
        var deliveryOptions = DeliveryService.Options()
        deliveryOptions.retryBase = .milliseconds(Int64(deliveryRetryBase * 1000))
        deliveryOptions.maxAttempts = deliveryAttempts
        let deliveries = box.map { box in DeliveryService(database: database, box: box, options: deliveryOptions, logger: logger,
                                         policyAllows: { ForwardingGate.policyAllows(policies[$0] ?? .default) },
                                         observe: { collector.metrics.delivery(kind: $0, outcome: $1) }) }

        logger.info("geo (city)", metadata: ["database": "\(geo.status.city)"])
        logger.info("geo (asn)", metadata: ["database": "\(geo.status.asn)"])
        if geoipCity == nil {
            logger.notice("no GeoIP database configured: country, region and city are stored as unknown (use --geoip-city)")
        }
        logger.info("policies", metadata: ["loaded": "\(policies.policies.keys.sorted().joined(separator: ","))"])

        guard (1...3600).contains(idleTimeout), (1...3600).contains(bodyTimeout) else {
            throw ServerConfigurationError(description: "--idle-timeout and --body-timeout are 1-3600 seconds")
        }
        let auth = Authenticator(database: database, box: box, deviceLabel: { userAgent in
            let agent = traffic.agent(userAgent)
            return "\(agent.browser) on \(agent.os)"
        })
        if let token = metricsToken, token.utf8.count < 16 { throw ServerConfigurationError(description: "--metrics-token must be at least 16 characters") }
        let router = buildRouter(collector: collector, assets: assets, office: office,
                                 attributor: Attributor(database: database, subjects: try SubjectHasher(database: database), referrers: traffic.referrers,
                                                                        contactBox: box),
                                 mayOperate: ObservabilityRoutes<CandorRequestContext>.operatorCheck(token: metricsToken) { auth.isOperator($0) })
        ProvisioningRoutes<CandorRequestContext>(administration: Administration(database: database, policies: policies)).add(to: router)
        do {
            let pages = try await Pages(directory: publicDir + "/templates")
            DashboardRoutes<CandorRequestContext>(database: database, policies: policies, auth: auth,
                                                  office: office, pages: pages, secureCookies: secureCookies,
                                                  health: { pipelineHealth(collector) },
                                                  clientAddress: { peer, forwarded in
                                                      collector.addresses.resolve(peer: peer, forwardedFor: forwarded).map(ClientAddressResolver.limitKey)
                                                  },
                                                  destinations: DestinationSetup(database: database, box: box, audit: office.audit),
                                                  secretBox: box, mailer: mailer,
                                                  mapCountries: assets != nil ? worldMap?.countries ?? [] : [],
                                                  referrers: traffic.referrers)
                .add(to: router)
        } catch {
            logger.warning("dashboard templates not found: the dashboard is not served", metadata: ["public-dir": "\(publicDir)"])
        }
        // The background service checkpoints from here on, not the commits (see CheckpointService).
        let checkpoints = CheckpointService(checkpointer: try WALCheckpointer(database: database), writer: collector.writer, logger: logger)
        try database.handOverCheckpoints()
        _ = try await rotation.tick()
        return Application(
            router: router,
            // POST /api/event is served by its own handler on the event loop; the rest by the router.
            server: .http1(configuration: .init(additionalChannelHandlers: [
                ConnectionGuard(idleTimeout: .seconds(Int64(idleTimeout)), bodyTimeout: .seconds(Int64(bodyTimeout))),
                EventIngestHandler(collector: collector),
            ])),
            configuration: .init(address: .hostname(host, port: port), serverName: "candor"),
            services: [WriterService(writer: collector.writer),
                       checkpoints,
                       rotation, scheduler, MetricsSampler(metrics: collector.metrics)] + (deliveries.map { [$0] } ?? []),
            onServerRunning: { _ in logger.notice("candor listening", metadata: ["url": "http://\(host):\(port)"]) },
            logger: logger)
}

/// Writes a `policy_changed` audit entry for each policy whose settings differ from the last ones
/// recorded (a fingerprint of the parsed settings, kept in the job log under `policy:NAME`).
func recordPolicyChanges(policies: PolicyBook, database: AppDatabase, audit: AuditLog) throws {
    let recorded = Dictionary(try database.jobRuns().map { ($0.name, $0.detail) }, uniquingKeysWith: { a, _ in a })
    for name in policies.policies.keys.sorted() {
        let text = policies[name]!.summary.text
        let fingerprint = Hex.encode(Sodium.hash(Array(text.utf8), outputLength: 16))
        let job = "policy:\(name)"
        let known = recorded[job] ?? nil
        guard known != fingerprint else { continue }
        try database.transaction { tx in
            try audit.record(in: tx, actor: "serve", action: known == nil ? "policy_loaded" : "policy_changed",
                             detail: ["policy": .string(name), "version": .init(policies[name]!.version), "fingerprint": .string(fingerprint)])
            try tx.recordRun(job: job, at: Int64(Date().timeIntervalSince1970 * 1000), detail: fingerprint)
        }
    }
}

/// The running collector's figures for the dashboard's pipeline-health page.
func pipelineHealth(_ collector: Collector) -> PipelineHealth {
    let m = collector.metrics
    let geo = collector.pipeline.deps.geo.status
    return PipelineHealth(
        samples: m.samples.map {
            .init(at: $0.at, received: $0.received, accepted: $0.accepted, dropped: $0.dropped, rejected: $0.rejected,
                  errors: $0.writeErrors + $0.webhookFailures)
        },
        queueDepth: m.queueDepth.value, commitP50Ms: m.commitSeconds.quantile(0.5).map { $0 * 1000 },
        commitP99Ms: m.commitSeconds.quantile(0.99).map { $0 * 1000 },
        geo: [("City database", geo.city), ("ASN database", geo.asn),
              ("Built", geo.buildEpoch.map { "\($0.formatted(.iso8601)) (\(Int(Date().timeIntervalSince($0) / 86_400)) days ago)" } ?? "unknown")],
        webhooks: m.webhookCounts,
        deliveries: m.deliveryCounts,
        datasets: collector.pipeline.deps.traffic.datasets.map {
            ($0.name, "\($0.package) \($0.version), \($0.entries) entries\($0.rejected > 0 ? ", \($0.rejected) refused" : "") (\($0.path))")
        },
        botDrops: BotLayer.allCases.map { ($0.rawValue, m.botDropCount($0)) })
}
