import ArgumentParser
import Collector
import Foundation
import Geo
import Hummingbird
import Logging
import NIOCore
import Server
import Traffic

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the collector and its endpoints.")

    @OptionGroup var data: DataOptions

    @Option(help: "Address to listen on (env CANDOR_HOST).")
    var host: String = env("CANDOR_HOST") ?? "127.0.0.1"

    @Option(help: "Port to listen on (env CANDOR_PORT).")
    var port: Int = env("CANDOR_PORT").flatMap(Int.init) ?? 8080

    @Option(name: .customLong("geoip-city"), help: "MaxMind City or Country .mmdb (env CANDOR_GEOIP_CITY).")
    var geoipCityFlag: String?

    @Option(name: .customLong("geoip-asn"), help: "MaxMind ASN .mmdb (env CANDOR_GEOIP_ASN).")
    var geoipASNFlag: String?

    var geoipCity: String? { geoipCityFlag ?? env("CANDOR_GEOIP_CITY") }
    var geoipASN: String? { geoipASNFlag ?? env("CANDOR_GEOIP_ASN") }

    @Option(name: .customLong("trusted-proxy"),
            help: "CIDR whose X-Forwarded-For is believed; repeatable (env CANDOR_TRUSTED_PROXIES, comma-separated).")
    var trustedProxies: [String] = env("CANDOR_TRUSTED_PROXIES")?.split(separator: ",").map(String.init) ?? []

    @Option(name: .customLong("rate-site"), help: "Sustained events/s per site (burst 5×).")
    var rateSite: Double = env("CANDOR_RATE_SITE").flatMap(Double.init) ?? 2000

    @Option(name: .customLong("rate-client"), help: "Sustained events/s per client address (burst 10×).")
    var rateClient: Double = env("CANDOR_RATE_CLIENT").flatMap(Double.init) ?? 20

    @Option(name: .customLong("public"), help: "Directory of pixel.js, consent.js and the demo assets (env CANDOR_PUBLIC).")
    var publicDir: String = env("CANDOR_PUBLIC") ?? "./Public"

    @Option(name: .customLong("purge-every"), help: "Hours between retention purges; 0 disables them (run candor purge yourself) (env CANDOR_PURGE_EVERY).")
    var purgeEvery: Double = env("CANDOR_PURGE_EVERY").flatMap(Double.init) ?? 6

    @Option(name: .customLong("requests-every"), help: "Minutes between runs of the deletion-request processor (env CANDOR_REQUESTS_EVERY).")
    var requestsEvery: Double = env("CANDOR_REQUESTS_EVERY").flatMap(Double.init) ?? 5

    @Option(name: .customLong("rollups-every"), help: "Seconds between rollup runs: how far the dashboard may lag behind the events (env CANDOR_ROLLUPS_EVERY).")
    var rollupsEvery: Double = env("CANDOR_ROLLUPS_EVERY").flatMap(Double.init) ?? 60

    @Flag(name: .customLong("secure-cookies"), help: "Mark dashboard cookies Secure (behind TLS) (env CANDOR_SECURE_COOKIES=1).")
    var secureCookiesFlag = false
    var secureCookies: Bool { secureCookiesFlag || env("CANDOR_SECURE_COOKIES") == "1" }

    @Option(name: .customLong("event-loops"),
            help: "NIO event loops; default one per core but one, which the event writer's thread keeps busy (env CANDOR_EVENT_LOOPS).")
    var eventLoops: Int = env("CANDOR_EVENT_LOOPS").flatMap(Int.init) ?? max(1, System.coreCount - 1)

    @Option(name: .customLong("metrics-token"),
            help: "Bearer token that may read /health and /metrics besides owner and admin sessions (env CANDOR_METRICS_TOKEN).")
    var metricsTokenFlag: String?
    var metricsToken: String? { metricsTokenFlag ?? env("CANDOR_METRICS_TOKEN") }

    @Option(name: .customLong("idle-timeout"), help: "Seconds a connection may wait before sending a complete request head (env CANDOR_IDLE_TIMEOUT).")
    var idleTimeout: Int = env("CANDOR_IDLE_TIMEOUT").flatMap(Int.init) ?? 30

    @Option(name: .customLong("body-timeout"), help: "Seconds a client may take to send a request from its head to its end (env CANDOR_BODY_TIMEOUT).")
    var bodyTimeout: Int = env("CANDOR_BODY_TIMEOUT").flatMap(Int.init) ?? 30

    @Option(name: .customLong("uap-core"), help: "uap-core's regexes.yaml (env CANDOR_UAP_CORE; Debian package uap-core).")
    var uapCore: String = env("CANDOR_UAP_CORE") ?? DatasetPaths().userAgents

    @Option(name: .customLong("crawler-list"),
            help: "crawler-user-agents.json, or 'none' to run without that bot layer (env CANDOR_CRAWLER_LIST; PyPI package crawler-user-agents).")
    var crawlerList: String = env("CANDOR_CRAWLER_LIST") ?? DatasetPaths.defaultCrawlers

    @Option(name: .customLong("referrer-list"),
            help: "referer-parser's referers.json, or 'none' for Candor's own short list only (env CANDOR_REFERRER_LIST; Debian package ruby-referer-parser).")
    var referrerList: String = env("CANDOR_REFERRER_LIST") ?? DatasetPaths.defaultReferrers

    @Option(name: .customLong("datacenter-asns"),
            help: "Autonomous systems of data centres, one per line (AS123 # name), for policies with bots.drop_datacenter_networks (env CANDOR_DATACENTER_ASNS; needs --geoip-asn).")
    var datacenterASNs: String? = env("CANDOR_DATACENTER_ASNS")

    @Option(name: .customLong("world-map"),
            help: "pygal_maps_world's worldmap.svg, the country shapes of the dashboard's map, or 'none' (env CANDOR_WORLD_MAP; PyPI package pygal_maps_world).")
    var worldMapPath: String = env("CANDOR_WORLD_MAP") ?? WorldMap.defaultSource

    var datasetPaths: DatasetPaths {
        DatasetPaths(userAgents: uapCore, crawlers: crawlerList, referrers: referrerList, datacenterNetworks: datacenterASNs)
    }

    @Option(name: .customLong("delivery-retry-base"),
            help: "Seconds before a failed delivery's first retry; doubled per attempt, with jitter (env CANDOR_DELIVERY_RETRY_BASE).")
    var deliveryRetryBase: Double = env("CANDOR_DELIVERY_RETRY_BASE").flatMap(Double.init) ?? 10

    @Option(name: .customLong("delivery-attempts"), help: "Attempts before a delivery is dead-lettered (env CANDOR_DELIVERY_ATTEMPTS).")
    var deliveryAttempts: Int = env("CANDOR_DELIVERY_ATTEMPTS").flatMap(Int.init) ?? 8

    @OptionGroup var mail: MailOptions

    @Option(name: .customLong("reports-every"), help: "Seconds between checks for scheduled reports due (env CANDOR_REPORTS_EVERY).")
    var reportsEvery: Double = env("CANDOR_REPORTS_EVERY").flatMap(Double.init) ?? 600

    @Option(name: .customLong("alerts-every"), help: "Seconds between evaluations of the alert rules (env CANDOR_ALERTS_EVERY).")
    var alertsEvery: Double = env("CANDOR_ALERTS_EVERY").flatMap(Double.init) ?? 60

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = env("CANDOR_LOG_LEVEL") ?? "info"

    func run() async throws {
        // Before anything uses NIO's shared event loop group.
        NIOSingletons.groupLoopCountSuggestion = max(1, eventLoops)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var c = ServerConfiguration(dataDirectory: data.data, policiesDirectory: data.policies, publicDirectory: publicDir)
        c.trustedProxies = try trustedProxies.map { text in
            guard let cidr = CIDR(text.trimmingCharacters(in: .whitespaces)) else {
                throw UsageError(description: "--trusted-proxy \(text) is not a CIDR range")
            }
            return cidr
        }
        c.host = host; c.port = port; c.geoipCity = geoipCity; c.geoipASN = geoipASN
        c.rateSite = rateSite; c.rateClient = rateClient
        c.requestsEvery = requestsEvery; c.purgeEvery = purgeEvery; c.rollupsEvery = rollupsEvery
        c.reportsEvery = reportsEvery; c.alertsEvery = alertsEvery
        c.secureCookies = secureCookies; c.metricsToken = metricsToken
        c.idleTimeout = idleTimeout; c.bodyTimeout = bodyTimeout
        c.datasets = datasetPaths; c.worldMap = worldMapPath
        c.deliveryRetryBase = deliveryRetryBase; c.deliveryAttempts = deliveryAttempts
        c.mailer = try mail.mailer()
        let app: any ApplicationProtocol
        do { app = try await buildApplication(c, logger: Logger(label: "candor")) } catch let error as ServerConfigurationError {
            if error.invalidOption { throw ValidationError(error.description) }
            throw UsageError(description: error.description)
        }
        try await app.runService()
    }
}

