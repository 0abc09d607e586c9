import ArgumentParser
import Collector
import Foundation
import Traffic

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print how the collector classifies a user agent, a landing URL and a referrer (bot layer, browser, OS, device, channel, source).")

    @Option(name: .customLong("user-agent"), help: "The User-Agent header.")
    var userAgent: String?

    @Option(help: "The Sec-Purpose header (prefetch, prerender).")
    var purpose: String?

    @Option(help: "The landing page URL (its utm_* and click-id parameters count).")
    var url: String?

    @Option(help: "The referrer URL.")
    var referrer: String?

    @Option(name: .customLong("utm"), help: "A campaign field as key=value (utm_source=…, utm_medium=…); repeatable; added to --url.")
    var utm: [String] = []

    @Option(name: .customLong("site-domain"), help: "The site's own domain (a referrer from it is an internal one); repeatable.")
    var siteDomains: [String] = []

    @Option(name: .customLong("uap-core"), help: "uap-core's regexes.yaml.")
    var uapCore: String = DatasetPaths().userAgents

    @Option(name: .customLong("crawler-list"), help: "crawler-user-agents.json, or 'none'.")
    var crawlerList: String = DatasetPaths.defaultCrawlers

    @Option(name: .customLong("referrer-list"), help: "referer-parser's referers.json, or 'none'.")
    var referrerList: String = DatasetPaths.defaultReferrers

    func run() throws {
        guard userAgent != nil || url != nil || referrer != nil || !utm.isEmpty else {
            throw ValidationError("give --user-agent, --url, --referrer or --utm")
        }
        let traffic: TrafficClassifier
        do { traffic = try TrafficClassifier(paths: DatasetPaths(userAgents: uapCore, crawlers: crawlerList, referrers: referrerList)) } catch { throw UsageError(description: "\(error)") }
        for term in utm where !term.contains("=") { throw ValidationError("--utm takes key=value, not \(term)") }
        var page = url
        if !utm.isEmpty {
            let base = url ?? "https://\(siteDomains.first ?? "example.invalid")/"
            page = base + (base.contains("?") ? "&" : "?") + utm.joined(separator: "&")
        }
        let lines = explainClassification(traffic: traffic, userAgent: userAgent, purpose: purpose, page: page,
                                          referrer: referrer, siteDomains: siteDomains)
        let width = lines.map(\.0.count).max() ?? 0
        for (label, value) in lines { print(label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value) }
    }
}
