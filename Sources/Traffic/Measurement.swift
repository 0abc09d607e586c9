import Foundation
import Yams

/// Measures the classifier against public samples kept outside the project: Matomo
/// device-detector's labelled fixtures (PyPI package `device-detector`, LGPL-3.0: real user
/// agents with bot, device type, OS and browser labels) and Snowplow's referrer test list
/// (`referer-tests.json`). Prints figures; judges nothing (`candor bench classify`).
public struct ClassificationMeasurement {
    let traffic: TrafficClassifier

    public init(traffic: TrafficClassifier) { self.traffic = traffic }

    /// Cold classification time per user agent (no cache), in microseconds: p50, p99, max.
    public func latency(_ agents: [String]) -> (p50: Double, p99: Double, max: Double) {
        for ua in agents.prefix(200) { _ = traffic.agent(ua) }  // warm-up
        var times: [Double] = []
        times.reserveCapacity(agents.count)
        for ua in agents {
            let start = ContinuousClock.now
            _ = traffic.agent(ua)
            let d = ContinuousClock.now - start
            times.append(Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12)
        }
        times.sort()
        guard !times.isEmpty else { return (0, 0, 0) }
        return (times[times.count / 2], times[min(times.count - 1, times.count * 99 / 100)], times.last!)
    }

    /// Hostile input: `count` user agents of `length` bytes built from the tokens the patterns
    /// look for, worst time in microseconds after warm-up.
    public func hostileWorst(count: Int, length: Int, using rng: inout some RandomNumberGenerator) -> Double {
        func next() -> UInt64 { rng.next() }
        let tokens = ["Mozilla/5.0 ", "(Linux; Android 14; ", "SM-", "Build/", "AppleWebKit/537.36 ", "Chrome/", "Mobile ",
                      "Safari/", "Version/", "; wv) ", "bot", "crawl", "spider", "(compatible; ", "+http://", "iPhone OS ",
                      "like Mac OS X", "Windows NT 10.0", "Firefox/", "Opera", " ", "/", ";", "1", "2.0", "(", ")", "aaaa"]
        var agents: [String] = []
        for _ in 0..<count {
            var s = ""
            while s.utf8.count < length { s += tokens[Int(next() % UInt64(tokens.count))] }
            agents.append(String(s.utf8.prefix(length))!)
        }
        return latency(agents).max
    }

    public struct Fixture {
        public var userAgent: String
        /// Matomo's verdict: a bot, or a client type (browser, mobile app, …) with device type,
        /// OS family and browser family.
        public var bot: Bool
        public var botCategory: String?
        public var clientType: String?
        public var deviceType: String?
        public var osFamily: String?
        public var browserFamily: String?
        public var browserName: String?
    }

    /// Reads every `*.yml` fixture file in `directory` (device-detector's tests/fixtures/upstream).
    public static func matomoFixtures(in directory: String) throws -> [Fixture] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yml") }.sorted()
        var fixtures: [Fixture] = []
        for file in files {
            let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            guard let list = try Yams.load(yaml: text, .basic) as? [[String: Any]] else { continue }
            for item in list {
                guard let ua = item["user_agent"].map(yamlString), !ua.isEmpty else { continue }
                let client = item["client"] as? [String: Any]
                let device = item["device"] as? [String: Any]
                fixtures.append(Fixture(userAgent: ua, bot: item["bot"] != nil,
                                        botCategory: (item["bot"] as? [String: Any])?["category"].map(yamlString), clientType: client?["type"].map(yamlString),
                                        deviceType: device?["type"].map(yamlString), osFamily: item["os_family"].map(yamlString),
                                        browserFamily: item["browser_family"].map(yamlString),
                                        browserName: client?["name"].map(yamlString)))
            }
        }
        return fixtures
    }

    /// Matomo device types as Candor's classes (nil: no counterpart, not compared).
    static func deviceClass(matomo type: String) -> DeviceClass? {
        switch type {
        case "smartphone", "phablet", "feature phone": .mobile
        case "tablet": .tablet
        case "desktop": .desktop
        case "tv": .tv
        case "console": .console
        default: nil
        }
    }

    /// Candor's OS names as Matomo's OS families.
    static func osFamily(_ os: String) -> String {
        switch os {
        case "macOS": "Mac"
        case "ChromeOS": "Chrome OS"
        case "Linux", "Ubuntu", "Fedora", "Debian", "Mint", "Arch Linux", "Gentoo", "Red Hat", "CentOS", "Kubuntu", "SUSE", "Slackware": "GNU/Linux"
        case "Windows Phone", "Windows Mobile", "Windows CE", "Windows RT": "Windows Mobile"
        case "BlackBerry OS", "BlackBerry Tablet OS": "BlackBerry"
        case "Symbian OS", "Symbian^3", "Series 60", "Series 40": "Symbian"
        default: os
        }
    }

    /// The leading browsers (names as uap-core and as Matomo call them).
    static let leadingBrowsers: [String: Set<String>] = [
        "Chrome": ["Chrome"], "Chrome Mobile": ["Chrome Mobile"], "Chrome Mobile iOS": ["Chrome Mobile iOS"],
        "Firefox": ["Firefox"], "Firefox Mobile": ["Firefox Mobile"], "Firefox iOS": ["Firefox Mobile iOS"],
        "Safari": ["Safari"], "Mobile Safari": ["Mobile Safari"], "Edge": ["Microsoft Edge"], "Opera": ["Opera"],
        "Samsung Internet": ["Samsung Browser"], "Chrome Mobile WebView": ["Chrome Webview"],
    ]

    /// Lines of figures over the Matomo fixtures.
    public func userAgentReport(_ fixtures: [Fixture]) -> [String] {
        var lines: [String] = []
        let bots = fixtures.filter(\.bot)
        let caught = bots.filter { traffic.agent($0.userAgent).bot != nil }
        lines.append(String(format: "crawler recall: %.4f (%d of %d Matomo bot fixtures)", ratio(caught.count, bots.count), caught.count, bots.count))
        var missedBy: [String: Int] = [:]
        let missed = bots.filter { traffic.agent($0.userAgent).bot == nil }
        for f in missed { missedBy[f.botCategory ?? "uncategorized", default: 0] += 1 }
        lines.append("  missed, by Matomo category: " + missedBy.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        if ProcessInfo.processInfo.environment["CANDOR_SHOW_MISSES"] != nil {
            for f in missed { lines.append("  missed: \(f.userAgent.prefix(200)) [\(f.botCategory ?? "-")]") }
        }
        let browsers = fixtures.filter { !$0.bot && $0.clientType == "browser" }
        let falseBots = browsers.filter { traffic.agent($0.userAgent).bot != nil }
        lines.append(String(format: "false bots: %.4f (%d of %d Matomo browser fixtures)", ratio(falseBots.count, browsers.count),
                            falseBots.count, browsers.count))
        for f in falseBots.prefix(5) { lines.append("  e.g. \(f.userAgent.prefix(160)) [\(traffic.agent(f.userAgent).bot!.rawValue)]") }

        var device = (0, 0), os = (0, 0), browser = (0, 0)
        var deviceMisses: [String: Int] = [:]
        for f in browsers {
            let v = traffic.agent(f.userAgent)
            if let type = f.deviceType, let expected = Self.deviceClass(matomo: type) {
                device.1 += 1
                if v.device == expected { device.0 += 1 } else { deviceMisses["\(type)→\(v.device.rawValue)", default: 0] += 1 }
            }
            if let family = f.osFamily, family != "Unknown" {
                os.1 += 1
                if Self.osFamily(v.os) == family { os.0 += 1 }
            }
            if let name = f.browserName, let expected = Self.leadingBrowsers.first(where: { $0.value.contains(name) })?.key {
                browser.1 += 1
                if v.browser == expected { browser.0 += 1 }
            }
        }
        lines.append(String(format: "device class agrees with Matomo: %.4f (%d of %d browser fixtures with a comparable type)",
                            ratio(device.0, device.1), device.0, device.1))
        lines.append("  most frequent disagreements: " + deviceMisses.sorted { $0.value > $1.value }.prefix(6).map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        lines.append(String(format: "OS family agrees with Matomo: %.4f (%d of %d)", ratio(os.0, os.1), os.0, os.1))
        lines.append(String(format: "browser family agrees with Matomo (leading browsers): %.4f (%d of %d)", ratio(browser.0, browser.1), browser.0, browser.1))
        return lines
    }

    /// Lines of figures over a traffic-weighted sample of real browsers: fake-useragent's
    /// `browsers.jsonl` (PyPI `fake-useragent`, Apache-2.0; user agents seen in real traffic, each
    /// with its share in percent and the device type the visiting browser reported). Only the
    /// device type is an independent label there (its browser and OS names come from a ua-parser
    /// and would measure uap-core against itself), so only device classes and false bots are
    /// measured, each weighted by the agent's share.
    public func realWorldReport(jsonl path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var weight = 0.0, deviceRight = 0.0, botWeight = 0.0, rows = 0
        var misses: [String: Double] = [:]
        var missExamples: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let ua = object["useragent"] as? String, let share = (object["percent"] as? NSNumber)?.doubleValue,
                  let type = object["type"] as? String, let expected = DeviceClass(rawValue: type) else { continue }
            rows += 1
            weight += share
            let verdict = traffic.agent(ua)
            if verdict.bot != nil { botWeight += share }
            if verdict.device == expected { deviceRight += share } else {
                let key = "\(type)→\(verdict.device.rawValue)"
                misses[key, default: 0] += share
                if missExamples[key] == nil { missExamples[key] = String(ua.prefix(160)) }
            }
        }
        var lines = [String(format: "real-world sample (%d agents, weighted by share): device class right %.4f, false bots %.4f",
                            rows, weight == 0 ? 0 : deviceRight / weight, weight == 0 ? 0 : botWeight / weight)]
        for (key, share) in misses.sorted(by: { $0.value > $1.value }).prefix(5) {
            lines.append(String(format: "  %@ %.4f, e.g. %@", key, weight == 0 ? 0 : share / weight, missExamples[key] ?? ""))
        }
        return lines
    }

    /// Lines of figures over Snowplow's referrer test list: the kind (search, social, email,
    /// ai for its "chatbot") right for each case.
    public func referrerReport(testsJSON path: String, referrers: ReferrerList? = nil, label: String = "") throws -> [String] {
        let list = referrers ?? traffic.referrers
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let cases = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
        var right = 0, total = 0
        var misses: [String] = []
        for c in cases {
            guard let uri = c["uri"] as? String, let medium = c["medium"] as? String, (c["known"] as? Bool) != false else { continue }
            total += 1
            let expected = medium == "chatbot" ? "ai" : medium
            let host = URLComponents(string: uri)?.host?.lowercased() ?? ""
            let path = Substring(URLComponents(string: uri)?.path ?? "/")
            let got = list.lookup(host: host, path: path)?.kind.rawValue ?? "none"
            if got == expected { right += 1 } else { misses.append("\(medium) \(host) → \(got)") }
        }
        var lines = [String(format: "referrer kind right%@: %.4f (%d of %d cases)", label, ratio(right, total), right, total)]
        if !misses.isEmpty { lines.append("  misses: " + misses.prefix(40).joined(separator: "; ")) }
        return lines
    }

    func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
}
