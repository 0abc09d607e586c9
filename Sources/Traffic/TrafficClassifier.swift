import Foundation
import Synchronization

public enum DatasetError: Error, CustomStringConvertible {
    case missing(dataset: String, path: String, package: String)
    case malformed(String, String)

    public var description: String {
        switch self {
        case .missing(let dataset, let path, let package):
            "the \(dataset) dataset is not at \(path): install \(package) (make run does), or point to it (candor serve --help)"
        case .malformed(let path, let why): "\(path) is not a usable dataset: \(why)"
        }
    }
}

/// Where the classification datasets are read from (never copied into the repository).
public struct DatasetPaths: Sendable {
    /// uap-core's regexes.yaml (Debian package uap-core).
    public var userAgents = "/usr/share/uap-core/regexes.yaml"
    /// crawler-user-agents.json (PyPI package crawler-user-agents, installed by the Makefile); nil: layer off.
    public var crawlers: String? = DatasetPaths.defaultCrawlers
    /// referer-parser's referers.json (Debian package ruby-referer-parser); nil: Candor's additions only.
    public var referrers: String? = DatasetPaths.defaultReferrers
    /// Autonomous systems of data centres (``DatacenterNetworks``); nil: layer unavailable.
    public var datacenterNetworks: String?

    public static let defaultCrawlers = "/usr/local/share/candor/crawler-user-agents/crawleruseragents/crawler-user-agents.json"
    public static let defaultReferrers = "/usr/share/rubygems-integration/all/gems/referer-parser-0.3.0/data/referers.json"

    public init() {}

    /// From command-line values: "none" for the crawler or referrer list turns that list off.
    public init(userAgents: String, crawlers: String, referrers: String, datacenterNetworks: String? = nil) {
        self.userAgents = userAgents
        self.crawlers = crawlers == "none" ? nil : crawlers
        self.referrers = referrers == "none" ? nil : referrers
        self.datacenterNetworks = datacenterNetworks
    }
}

/// One dataset as loaded: shown in pipeline health and /health.
public struct DatasetStatus: Sendable, Equatable {
    public var name: String
    public var package: String
    public var version: String
    public var path: String
    public var entries: Int
    /// Patterns the regular-expression engine refused (should be none).
    public var rejected: Int
}

/// Device classes a user agent is counted under.
public enum DeviceClass: String, Sendable, CaseIterable {
    case desktop, mobile, tablet, tv, console, ereader = "e-reader", other
}

/// Which layer decided that a request is not a person.
public enum BotLayer: String, Sendable, CaseIterable {
    /// uap-core's device parser says "Spider".
    case uapSpider = "uap_spider"
    /// A pattern of the crawler-user-agents list matches.
    case crawlerList = "crawler_list"
    /// A header rule (see `TrafficClassifier.agent`).
    case header
    /// The User-Agent names a contact (a URL or e-mail address): crawlers' convention, no
    /// browser's.
    case contact
    /// No uap-core parser recognizes a browser, an OS or a device in the User-Agent.
    case unidentified
    /// A speculative load (prefetch, prerender): not a visit, whoever sent it.
    case speculative
    /// The address belongs to a data centre's autonomous system (a policy's choice).
    case datacenter
}

/// A user agent as stored: browser family + major version, OS family, device class; or the
/// layer that found a bot.
public struct AgentVerdict: Sendable, Equatable {
    public var bot: BotLayer?
    public var browser: String
    public var browserVersion: String?
    public var os: String
    public var device: DeviceClass
    /// The crawler pattern that matched, for `candor classify`.
    public var crawlerPattern: String?
    public var facts: AgentFacts
}

/// Classification of traffic from maintained datasets: user agents (uap-core), crawlers
/// (crawler-user-agents), referrers (referer-parser + Candor's additions), channels.
public final class TrafficClassifier: Sendable {
    public let agents: UserAgentParser
    public let crawlers: CrawlerList?
    public let referrers: ReferrerList
    public let datacenters: DatacenterNetworks?
    public let datasets: [DatasetStatus]
    private let matchErrors = Atomic<Int>(0)
    /// Pattern matches that hit PCRE2's limits since start (their patterns counted as not matching).
    public var matchErrorCount: Int { matchErrors.load(ordering: .relaxed) }

    public init(paths: DatasetPaths) throws {
        guard FileManager.default.fileExists(atPath: paths.userAgents) else {
            throw DatasetError.missing(dataset: "user-agent", path: paths.userAgents, package: "the Debian package uap-core")
        }
        agents = try UserAgentParser(regexesYAML: paths.userAgents)
        var datasets = [DatasetStatus(name: "user agents", package: "uap-core", version: packageVersion(debian: "uap-core"),
                                      path: paths.userAgents, entries: agents.patternCount, rejected: agents.rejected.count)]
        if let path = paths.crawlers {
            guard FileManager.default.fileExists(atPath: path) else {
                throw DatasetError.missing(dataset: "crawler", path: path, package: "the PyPI package crawler-user-agents")
            }
            let list = try CrawlerList(json: path)
            crawlers = list
            datasets.append(DatasetStatus(name: "crawlers", package: "crawler-user-agents", version: packageVersion(pythonDistIn: path),
                                          path: path, entries: list.count, rejected: list.rejected.count))
        } else {
            crawlers = nil
        }
        if let path = paths.referrers {
            guard FileManager.default.fileExists(atPath: path) else {
                throw DatasetError.missing(dataset: "referrer", path: path, package: "the Debian package ruby-referer-parser")
            }
        }
        referrers = try ReferrerList(json: paths.referrers)
        datasets.append(DatasetStatus(name: "referrers", package: paths.referrers == nil ? "none (Candor's additions only)" : "ruby-referer-parser",
                                      version: paths.referrers == nil ? "-" : packageVersion(debian: "ruby-referer-parser"),
                                      path: paths.referrers ?? "-", entries: referrers.domainCount, rejected: 0))
        if let path = paths.datacenterNetworks {
            let list = try DatacenterNetworks(list: path)
            datacenters = list
            datasets.append(DatasetStatus(name: "data-centre networks", package: "list supplied with --datacenter-asns", version: "-",
                                          path: path, entries: list.numbers.count, rejected: 0))
        } else {
            datacenters = nil
        }
        self.datasets = datasets
    }

    /// The classifier over the default installed paths, loaded once per process (tests and tools).
    public static let installed: TrafficClassifier = {
        do { return try TrafficClassifier(paths: DatasetPaths()) } catch { fatalError("\(error)") }
    }()

    /// Classifies a request's user agent. Layers, in order: speculative loads (`purpose` is the
    /// Sec-Purpose or Purpose header); header rules (an empty or blank User-Agent: every browser
    /// sends one, only scripts omit it); uap-core's Spider verdict; the crawler list; a contact
    /// in the User-Agent ("+http://…", "https://…", "name@host": how crawlers identify
    /// themselves, never part of a browser's); nothing recognized (no uap-core parser finds a
    /// browser, an OS or a device: scripts and tools; every browser, app webview and phone the
    /// dataset knows is recognized by at least one).
    public func agent(_ userAgent: String, purpose: String? = nil) -> AgentVerdict {
        let subject = Subject(userAgent, limit: UserAgentParser.inputLimit)
        let scratch = MatchScratch()
        let facts = agents.parse(subject, scratch)
        var verdict = AgentVerdict(bot: nil, browser: facts.browser, browserVersion: facts.browserMajor, os: Self.osName(facts.os),
                                   device: Self.deviceClass(facts, subject), crawlerPattern: nil, facts: facts)
        if let purpose, Self.isSpeculative(purpose) { verdict.bot = .speculative }
        else if userAgent.utf8.allSatisfy({ $0 == 32 || $0 == 9 }) { verdict.bot = .header }
        else if facts.device == "Spider" { verdict.bot = .uapSpider }
        else if let crawlers, let pattern = crawlers.match(subject, scratch) {
            verdict.bot = .crawlerList
            verdict.crawlerPattern = pattern
        }
        else if Self.namesContact(subject) { verdict.bot = .contact }
        else if facts.browser == "Other", facts.os == "Other", facts.device == "Other", scratch.errors == 0 { verdict.bot = .unidentified }
        if scratch.errors > 0 { matchErrors.add(scratch.errors, ordering: .relaxed) }
        return verdict
    }

    /// The network layer: the request comes from an autonomous system on the data-centre list
    /// (only where the site's policy asks for it; see ``DatacenterNetworks``).
    public func networkLayer(asn: Int64?) -> BotLayer? {
        datacenters?.contains(asn) == true ? .datacenter : nil
    }

    static func namesContact(_ subject: Subject) -> Bool {
        if subject.containsLowercased(Array("http://".utf8)) || subject.containsLowercased(Array("https://".utf8))
            || subject.containsLowercased(Array("+http".utf8)) || subject.containsLowercased(Array("www.".utf8)) { return true }
        // An e-mail address: "@" between a letter or digit and a host name with a dot (letters,
        // digits, "-" and "." up to the next other character: a locale's "th-TH@calendar=gregorian"
        // is no address).
        let b = subject.lowered
        func isAlnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 97 && c <= 122) }
        for i in b.indices where b[i] == UInt8(ascii: "@") && i > 0 && i + 3 < b.count {
            guard isAlnum(b[i - 1]), isAlnum(b[i + 1]) else { continue }
            let host = b[(i + 1)...].prefix(64).prefix { isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
            if let dot = host.lastIndex(of: UInt8(ascii: ".")), dot > host.startIndex, dot < host.endIndex - 1 { return true }
        }
        return false
    }

    /// A prefetch or prerender (Sec-Purpose / Purpose, Safari's "preview").
    public static func isSpeculative(_ purpose: String) -> Bool {
        let p = purpose.lowercased()
        return p.contains("prefetch") || p.contains("prerender") || p.contains("preview")
    }

    /// uap-core's OS names, with Apple's and Google's current names for two of them (the names
    /// Candor stored before it used uap-core).
    static func osName(_ family: String) -> String {
        switch family {
        case "Mac OS X": "macOS"
        case "Chrome OS": "ChromeOS"
        default: family
        }
    }

    static let desktopSystems: Set<String> = ["Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Debian", "Chrome OS",
                                              "FreeBSD", "OpenBSD", "NetBSD", "Solaris", "Mint", "Arch Linux", "Gentoo",
                                              "Red Hat", "CentOS", "Kubuntu", "SUSE", "Slackware", "Mandriva", "Windows 10",
                                              "Windows 7", "Windows XP", "Windows 8", "Windows 8.1", "Windows Vista"]
    static let mobileSystems: Set<String> = ["iOS", "Android", "Windows Phone", "BlackBerry OS", "Symbian OS", "Symbian^3",
                                             "Series 40", "Series 60", "KaiOS", "Firefox OS", "Bada", "webOS", "Tizen",
                                             "Windows Mobile", "Windows CE", "Sailfish", "MeeGo", "Maemo", "HarmonyOS", "BlackBerry Tablet OS"]

    /// The device class of a parsed user agent. uap-core names device families, not classes;
    /// the rules, first match wins: TV platforms; game consoles; Kindle, Kobo, PocketBook and
    /// tolino readers (a Kindle on Android, the Fire, is a tablet); tablets (iPad, "Tablet" families and tokens,
    /// Kindle Fire, Android without "Mobile", as Google's guidance for tablet browsers has it);
    /// phones (iPhone/iPod, "Mobi" token, phone systems, any device with a brand uap-core knows
    /// on a non-desktop system: uap-core names phone hardware, not PCs); desktop systems; else other.
    static func deviceClass(_ facts: AgentFacts, _ subject: Subject) -> DeviceClass {
        let family = facts.device.lowercased()
        func has(_ token: String) -> Bool { subject.containsLowercased(Array(token.utf8)) }
        if has("smart-tv") || has("smarttv") || has("smart tv") || has("hbbtv") || has("googletv") || has("google tv")
            || has("android tv") || has("appletv") || has("apple tv") || has("crkey") || has("web0s") || has("netcast")
            || has("bravia") || has("roku") || has("aftb") || has("aftm") || has("afts") || has("aftt") || has("aftk")
            || has("tizen") && has(" tv") || family.contains("smart tv") || family == "apple tv" || family.hasPrefix("amazon fire tv") {
            return .tv
        }
        if family.contains("playstation") || family.contains("xbox") || family.contains("nintendo") || has("playstation")
            || has("xbox") || has("nintendo") || family.contains("ouya") {
            return .console
        }
        if (family.hasPrefix("kindle") && !family.contains("fire") && facts.os != "Android") || family.contains("kobo")
            || family.contains("pocketbook") || has("kobo touch") || has("tolino") || (has("kindle/") && !has("silk")) {
            return .ereader
        }
        if family == "ipad" || family.contains("tablet") || family.hasPrefix("kindle") || family.hasPrefix("kf")
            || has("ipad") || (has("tablet") && !has("tablet pc")) || (facts.os == "Android" && !has("mobile")) {
            return .tablet
        }
        if family == "iphone" || family == "ipod" || family.contains("smartphone") || family.contains("feature phone")
            || has("mobi") || has("iphone") || Self.mobileSystems.contains(facts.os)
            || (facts.brand != nil && facts.brand != "Spider" && !Self.desktopSystems.contains(facts.os)) {
            return .mobile
        }
        if Self.desktopSystems.contains(facts.os) || family == "mac" { return .desktop }
        return .other
    }
}

/// The version of an installed Debian package (from dpkg's status file), or "unknown".
func packageVersion(debian package: String) -> String {
    guard let status = try? String(contentsOfFile: "/var/lib/dpkg/status", encoding: .utf8) else { return "unknown" }
    var current: Substring?
    for line in status.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("Package: ") { current = line.dropFirst(9) }
        else if current == Substring(package), line.hasPrefix("Version: ") { return String(line.dropFirst(9)) }
    }
    return "unknown"
}

/// The version of the Python distribution a file was installed with (its `*.dist-info` folder
/// beside the package folder), or "unknown".
func packageVersion(pythonDistIn path: String) -> String {
    let packageDirectory = URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent()
    let names = (try? FileManager.default.contentsOfDirectory(atPath: packageDirectory.path)) ?? []
    for name in names where name.hasSuffix(".dist-info") {
        let stem = name.dropLast(".dist-info".count)
        if let dash = stem.lastIndex(of: "-") { return String(stem[stem.index(after: dash)...]) }
    }
    return "unknown"
}
