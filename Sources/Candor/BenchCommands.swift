import Actions
import ArgumentParser
import Collector
import Consent
import Geo
import Logging
import Foundation
import Admin
import PostgresStore
import Privacy
import Retention
import Storage
import Store
import Traffic

/// Helpers for `make bench` (hidden from help): a synthetic 10M-event site, timed exports.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark helpers.", shouldDisplay: false, subcommands: [Seed.self, ExportTiming.self, DashboardQueries.self, PipelineStages.self, ClassifyTiming.self, Truncation.self])

    static func subjectID(_ i: Int) -> String { "benchsubject" + String(format: "%08d", i) }

    struct Truncation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Time WAL truncations with their free-space pass (after deleting N events).")
        @OptionGroup var data: DataOptions
        @Option(help: "Events to delete first (the oldest), so the pass has something to zero.") var delete = 1000
        @Option var runs = 3

        func run() async throws {
            let database = try AppDatabase(path: data.data + "/candor.sqlite")
            let deleted = try database.deleteOldestEventsForBenchmark(delete)
            for run in 1...max(1, runs) {
                let started = ContinuousClock.now
                let t = try await database.truncateWAL()
                let elapsed = ContinuousClock.now - started
                print("RESULT run=\(run) deleted=\(run == 1 ? deleted : 0) pages_read=\(t.pagesRead) pages_zeroed=\(t.pagesZeroed) pass_locked_ms=\(String(format: "%.1f", t.passLockedMs)) "
                      + "truncation_ms=\(String(format: "%.1f", Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000))")
            }
        }
    }

    struct Seed: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a site and load synthetic events; prints the site id.")
        @OptionGroup var data: DataOptions
        @Option var events = 10_000_000
        @Option var days = 30
        @Option var subjects = 20_000
        @Option var policy = "default"

        func run() async throws {
            try data.ensureDirectory()
            let database = try AppDatabase(path: data.databasePath)
            let site = try Administration(database: database, policies: try PolicyBook(directory: data.policies))
                .addSite(name: "Bench \(events)", domains: ["bench.example"], policy: policy, by: .cli)
            let hasher = try SubjectHasher(database: database)
            let load = SyntheticLoad(site: site.id, events: events, days: days, end: Int64(Date().timeIntervalSince1970 * 1000),
                                     subjectHashes: (0..<subjects).map { hasher.hash(Bench.subjectID($0)) })
            let started = Date()
            try database.load(load) { done in
                if done % 1_000_000 < 100_000 {
                    FileHandle.standardError.write(Data("  \(done) events, \(Int(Date().timeIntervalSince(started))) s\n".utf8))
                }
            }
            // What a site owner sets up: the funnel's pages as goals, a custom event, sales.
            var funnel: [Int64] = []
            for path in SyntheticLoad.funnelPaths {
                funnel.append(try database.addGoal(Goal(siteID: site.id, name: "Page \(path)", kind: .page, match: path)).id!)
            }
            _ = try database.addGoal(Goal(siteID: site.id, name: "Blog", kind: .page, match: "/blog*"))
            _ = try database.addGoal(Goal(siteID: site.id, name: "Signups", kind: .event, match: "signup"))
            _ = try database.addGoal(Goal(siteID: site.id, name: "Sales", kind: .conversion, match: "sale"))
            try database.addFunnel(Funnel(siteID: site.id, name: "Signup", steps: funnel))
            _ = try await database.truncateWAL()
            FileHandle.standardError.write(Data("loaded \(events) events in \(Int(Date().timeIntervalSince(started))) s\n".utf8))
            print(site.id)
        }
    }

    struct ExportTiming: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "export", abstract: "Time subject exports (JSON) of random seeded subjects.")
        @OptionGroup var data: DataOptions
        @Option var site: String
        @Option var subjects = 20_000
        @Option var samples = 300

        func run() throws {
            let o = try Office(data)
            print("plan: \(try o.database.subjectExportPlan(site: site))")
            var ms: [Double] = []
            var rows = 0
            for _ in 0..<samples {
                let id = Bench.subjectID(Int.random(in: 0..<subjects))
                let t = DispatchTime.now().uptimeNanoseconds
                let export = try o.office.export(site: site, identifier: .subject(id), actor: "bench")
                let json = export.json
                ms.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
                rows += export.tables.reduce(0) { $0 + $1.rows.count } + (json.isEmpty ? 1 : 0)
            }
            ms.sort()
            let q = { (p: Double) in ms[min(ms.count - 1, Int(Double(ms.count) * p))] }
            print(String(format: "RESULT export_p50_ms=%.2f export_p99_ms=%.2f export_max_ms=%.2f rows_per_export=%d",
                         q(0.5), q(0.99), ms.last ?? 0, rows / max(samples, 1)))
        }
    }

    struct DashboardQueries: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dashboard", abstract: "Build the rollups (and the engine's days), then time the site view's figures.")
        @OptionGroup var data: DataOptions
        @Option var site: String
        @Option var samples = 20

        func run() throws {
            let database = try AppDatabase(path: data.databasePath)
            let started = Date()
            var runs = 0
            while !(try database.daysWithoutRollup(site: site, limit: 1)).isEmpty {
                try RollupJob.run(database: database, now: Date(), backfillPerRun: 31, engine: false)
                runs += 1
            }
            let build = Date().timeIntervalSince(started)
            let t0 = Date()
            try RollupJob.run(database: database, now: Date(), engine: false)
            let refresh = Date().timeIntervalSince(t0)
            // Rolling a day up leaves it in the engine; days rolled up by an earlier run are loaded
            // here (the benchmark can be run again on the same data).
            try database.facts.reconcile()
            let held = database.facts.loaded
            print(String(format: "engine: %d day(s), %d events, %d visits, about %d MB of columns", held.days, held.events, held.visits,
                         held.bytes / 1_000_000))
            let (overview, filtered) = try DashboardTiming.run(database: database, site: site, now: Date(), samples: samples, country: "DE")
            let q = { (a: [Double], p: Double) in a[min(a.count - 1, Int(Double(a.count) * p))] }
            print(String(format: "RESULT rollup_build_s=%.1f rollup_refresh_today_s=%.2f engine_mb=%d overview_p50_ms=%.1f overview_p99_ms=%.1f filtered_p50_ms=%.1f filtered_p99_ms=%.1f",
                         build, refresh, held.bytes / 1_000_000, q(overview, 0.5), q(overview, 0.99), q(filtered, 0.5), q(filtered, 0.99)))
        }
    }

    struct PipelineStages: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pipeline", abstract: "Time parsing, the pipeline steps and the writer per event, without HTTP.")
        @OptionGroup var data: DataOptions
        @Option var events = 200_000
        @Option var batch = 8
        @Option(name: .customLong("geoip-city")) var geoipCity: String?
        @Option(name: .customLong("geoip-asn")) var geoipASN: String?
        @Option(name: .customLong("database-url"),
                help: "Also write the same rows to this PostgreSQL database (an empty one: its schema is created), timed apart.")
        var databaseURL: String?

        func run() throws {
            try data.ensureDirectory()
            let database = try AppDatabase(path: data.databasePath)
            let policies = try PolicyBook(directory: data.policies)
            let site = try Administration(database: database, policies: policies)
                .addSite(name: "Pipeline bench", domains: ["example.com"], policy: "default", by: .cli)
            let geo: any GeoLookup = (geoipCity != nil || geoipASN != nil) ? try MaxMindGeo(cityPath: geoipCity, asnPath: geoipASN) : NoGeo()
            let collector = Collector(
                database: database, policies: policies, geo: geo, salts: try SaltKeeper(database: database),
                subjects: try SubjectHasher(database: database),
                limiter: RateLimiter(limits: .init(perSite: (1e9, 1e9), perClient: (1e9, 1e9))),
                addresses: ClientAddressResolver(trustedProxies: []), logger: Logger(label: "bench"),
                traffic: try TrafficClassifier(paths: DatasetPaths()))
            var sinks: [any EventSink] = [database]
            if let databaseURL {
                let postgres = try PostgresDatabase(url: databaseURL)
                try postgres.copySite(id: site.id, name: site.name, domains: site.domains, policy: site.policy, calendar: site.calendar,
                                      createdAt: Int64(site.createdAt.timeIntervalSince1970 * 1000))
                sinks.append(postgres)
            }
            let r = try PipelineTiming.run(collector: collector, site: site.id, count: events, batch: batch, sinks: sinks)
            var line = String(format: "RESULT parse_ns=%.0f pipeline_ns=%.0f write_ns=%.0f stored=%d", r.parseNs, r.pipelineNs, r.writeNs[0], r.stored)
            if r.writeNs.count > 1 {
                line += String(format: " postgres_write_ns=%.0f postgres_to_sqlite=%.2f", r.writeNs[1], r.writeNs[1] / r.writeNs[0])
            }
            print(line)
        }
    }

    struct ClassifyTiming: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "classify", abstract: "Classifier figures on public samples kept outside the project: cold lookups, bots, devices, referrers.")
        @Option(name: .customLong("matomo-fixtures"), help: "device-detector's tests/fixtures/upstream directory.")
        var matomoFixtures: String
        @Option(name: .customLong("referrer-tests"), help: "Snowplow referer-parser's referer-tests.json.")
        var referrerTests: String?
        @Option(name: .customLong("real-world"), help: "fake-useragent's data/browsers.jsonl (user agents weighted by their share of real traffic).")
        var realWorld: String?

        func run() throws {
            let traffic = try TrafficClassifier(paths: DatasetPaths())
            let measure = ClassificationMeasurement(traffic: traffic)
            let fixtures = try ClassificationMeasurement.matomoFixtures(in: matomoFixtures)
            let agents = Array(Set(fixtures.map(\.userAgent))).sorted()
            let cold = measure.latency(agents)
            var rng = SplitMix(seed: 42)
            let hostile = measure.hostileWorst(count: 500, length: 2000, using: &rng)
            print(String(format: "cold lookups of %d distinct user agents: p50 %.0f µs, p99 %.0f µs, max %.0f µs; 2,000-byte hostile: worst %.0f µs",
                         agents.count, cold.p50, cold.p99, cold.max, hostile))
            for line in measure.userAgentReport(fixtures) { print(line) }
            if let realWorld { for line in try measure.realWorldReport(jsonl: realWorld) { print(line) } }
            if let referrerTests {
                let datasetOnly = try ReferrerList(json: DatasetPaths.defaultReferrers, additions: false)
                for line in try measure.referrerReport(testsJSON: referrerTests, referrers: datasetOnly, label: " (dataset alone)") { print(line) }
                for line in try measure.referrerReport(testsJSON: referrerTests, label: " (dataset + Candor's additions)") { print(line) }
            }
            print(String(format: "RESULT classify_p50_us=%.1f classify_p99_us=%.1f classify_max_us=%.1f hostile_worst_us=%.1f", cold.p50, cold.p99, cold.max, hostile))
        }
    }
}
