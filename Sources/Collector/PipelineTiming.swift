import Consent
import Foundation
import Store
public import Storage

/// Times the stages of ingestion without HTTP (`candor bench pipeline`): body parsing, the
/// pipeline steps and the writer's transaction, over the same kind of varied events that
/// `make bench` posts. Nanoseconds per event, so that changes to one stage can be measured alone.
public enum PipelineTiming {
    public struct Result: Sendable {
        public var parseNs: Double
        public var pipelineNs: Double
        /// Per sink, in the order given.
        public var writeNs: [Double]
        public var stored: Int
    }

    /// Bodies like bench/events.lua's: paths, referrers, UTM, consent and user agents vary.
    static func requests(site: String, count: Int) -> [(body: [UInt8], userAgent: String, ip: String)] {
        let paths = ["/", "/pricing", "/blog/how-we-count", "/docs/install", "/signup", "/blog/2024/05/launch", "/about", "/contact"]
        let refs = ["", "https://www.google.com/search?q=candor", "https://news.ycombinator.com/item?id=1", "https://t.co/abc",
                    "https://duckduckgo.com/", "https://blog.example.org/post", "https://mail.google.com/mail/u/0"]
        let utm = ["", "?utm_source=newsletter&utm_medium=email&utm_campaign=nov", "?gclid=abc123", "?utm_source=twitter&utm_medium=social"]
        let uas = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        ]
        let consents = ["\"unset\"", "\"denied\"", "{\"analytics\":true,\"marketing\":false}", "{\"analytics\":true,\"marketing\":true}"]
        let ips = ["81.2.69.", "89.160.20.", "216.160.83.", "2001:218::1", "175.16.199."]
        return (0..<count).map { i in
            let name = i % 10 == 0 ? "signup" : "pageview"
            let extra = name == "signup" ? ",\"props\":{\"plan\":\"pro\"},\"value\":49,\"currency\":\"USD\"" : ""
            let body = "{\"site\":\"\(site)\",\"name\":\"\(name)\",\"url\":\"https://example.com\(paths[i % paths.count])\(utm[i % utm.count])\","
                + "\"referrer\":\"\(refs[i % refs.count])\",\"id\":\"\(UUID().uuidString.lowercased())\",\"consent\":\(consents[i % consents.count]),"
                + "\"screen\":\([390, 820, 1280, 1920][i % 4])\(extra)}"
            let ip = ips[i % ips.count]
            return (Array(body.utf8), uas[i % uas.count], ip.hasSuffix(".") ? ip + String(i % 250 + 1) : ip)
        }
    }

    /// Runs `count` single-event requests through parsing and the pipeline, then writes the
    /// rows in batches of `batch` (one transaction each) to `sinks` (the collector's store when
    /// none): the same rows to each, timed apart (`writeNs`, one figure per sink).
    public static func run(collector: Collector, site: String, count: Int, batch: Int, sinks: [any EventSink] = []) throws -> Result {
        let inputs = requests(site: site, count: count)
        guard let (siteRecord, policy) = collector.site(site) else { throw WireError("unknown site \(site)") }
        let clock = ContinuousClock()
        var parsed: [[IncomingEvent]] = []
        parsed.reserveCapacity(count)
        let t0 = clock.now
        for input in inputs {
            parsed.append(try input.body.withUnsafeBytes { try Wire.parseBatch($0) })
        }
        let t1 = clock.now
        var rows: [EventRow] = []
        rows.reserveCapacity(count)
        let now = Date()
        for (events, input) in zip(parsed, inputs) {
            let facts = RequestFacts(ip: input.ip, userAgent: input.userAgent, now: now)
            rows.append(contentsOf: collector.pipeline.run(events, site: siteRecord, policy: policy, facts: facts).rows)
        }
        let t2 = clock.now
        let ns = { (d: Duration) in d.inSeconds * 1e9 }
        var stored = 0
        var writeNs: [Double] = []
        for sink in sinks.isEmpty ? [collector.database] : sinks {
            let started = clock.now
            stored = 0
            var start = 0
            while start < rows.count {
                let end = min(rows.count, start + batch)
                stored += try sink.insertEvents(Array(rows[start..<end]), tallies: []).filter { $0 == .stored }.count
                start = end
            }
            writeNs.append(ns(clock.now - started) / Double(max(rows.count, 1)))
        }
        return Result(parseNs: ns(t1 - t0) / Double(count), pipelineNs: ns(t2 - t1) / Double(count), writeNs: writeNs, stored: stored)
    }
}
