@testable import Collector
import Consent
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Store
import Storage
import Testing

/// Issue 16, the cnil-exempt mode: the loader refuses every setting that contradicts the CNIL's
/// conditions, and the running server keeps nothing the exemption excludes.
@Suite struct CNILPolicyTests {
    /// A cnil-exempt policy with the retention and any other tables given.
    static func policy(consent: String = "", retention: String = "events = 395\nsessions = 395\nrollups = 760", _ extra: String = "") -> String {
        "[consent]\nmode = \"cnil-exempt\"\n\(consent)\n[retention]\n\(retention)\n\(extra)"
    }

    @Test func theShippedPolicyLoadsAndEachContradictionIsRefusedByName() throws {
        let shipped = try Policy(toml: String(contentsOfFile: "policies/cnil-exempt.toml", encoding: .utf8), name: "cnil-exempt")
        #expect(shipped.mode == .cnilExempt && shipped.cnilConflicts.isEmpty)
        #expect(try Policy(toml: Self.policy(), name: "ok").mode == .cnilExempt)
        let refused: [(String, String)] = [
            (Self.policy(consent: "anonymous_counting = false"), "anonymous_counting"),
            (Self.policy("[collect]\nquery_allowlist = [\"page\", \"utm_campaign\"]"), "utm_campaign"),
            (Self.policy("[collect]\nquery_allowlist = [\"GCLID\"]"), "GCLID"),
            (Self.policy("[collect]\nquery_allowlist = [\"ref\"]"), "ref"),
            (Self.policy("[collect]\nquery_allowlist = [\"srsltid\"]"), "srsltid"),
            (Self.policy("[collect]\nform_field_allowlist = [\"plan\"]"), "form_field_allowlist"),
            (Self.policy(retention: "events = 0\nsessions = 395\nrollups = 760"), "retention.events must be set"),
            (Self.policy(retention: "events = 395\nsessions = 395\nrollups = 761"), "retention.rollups = 761 is over 25 months"),
            (Self.policy("[dashboard]\nk_threshold = 2"), "k_threshold"),
            (Self.policy("[dashboard]\nrestrict_managers = false"), "restrict_managers"),
        ]
        for (text, named) in refused {
            do {
                _ = try Policy(toml: text, name: "x")
                Issue.record("accepted: \(text)")
            } catch let error as PolicyError {
                #expect(error.description.contains("cnil-exempt") && error.description.contains(named), "\(error)")
            }
        }
        // The same settings are fine under another mode.
        #expect(throws: Never.self) { try Policy(toml: "[collect]\nquery_allowlist = [\"utm_campaign\"]\n[retention]\nevents = 0", name: "y") }
    }

    @Test func addressesLoseTheirHostPart() {
        #expect(truncatedAddress("89.160.20.112") == "89.160.20.0")
        #expect(truncatedAddress("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::")
        #expect(truncatedAddress("::ffff:81.2.69.160") == "::ffff:81.2.69.0")
        #expect(truncatedAddress("not an address") == nil)
    }

    @Test func aGrantCountsOnlyFromATrustedSourceAndARefusalFromAny() throws {
        var policy = Policy.default
        let granted = ConsentState.granted(analytics: true, marketing: true)
        for source: ConsentSource? in [nil, .candor, .tcf, .gcm] {
            #expect(ConsentDecider.decide(policy: policy, state: granted, source: source, signals: .init()) == .identified(marketing: true))
        }
        policy.consentSources = [.candor]
        #expect(ConsentDecider.decide(policy: policy, state: granted, source: .tcf, signals: .init()) == .anonymous)
        #expect(ConsentDecider.decide(policy: policy, state: granted, source: nil, signals: .init()) == .identified(marketing: true))
        policy.consentSources = [.gcm]
        #expect(ConsentDecider.decide(policy: policy, state: granted, source: nil, signals: .init()) == .anonymous)
        // The refused part of an untrusted grant still counts (opt-out identifies without a choice).
        policy.mode = .optOut
        #expect(ConsentDecider.decide(policy: policy, state: .granted(analytics: true, marketing: false), source: .tcf, signals: .init())
                == .identified(marketing: false))
        #expect(ConsentDecider.decide(policy: policy, state: .granted(analytics: false, marketing: true), source: .tcf, signals: .init())
                == .anonymous)
        #expect(ConsentDecider.decide(policy: policy, state: .granted(analytics: true, marketing: true), source: .tcf, signals: .init())
                == .identified(marketing: true))
        policy.mode = .optIn
        policy.anonymousCounting = false
        #expect(ConsentDecider.decide(policy: policy, state: .denied, source: .tcf, signals: .init()) == .drop(.consentDenied))
        #expect(throws: PolicyError.self) { try Policy(toml: "[consent]\nsources = [\"tcf\", \"onetrust\"]", name: "z") }
        #expect(throws: PolicyError.self) { try Policy(toml: "[consent]\nsources = [\"tcf\", \"tcf\"]", name: "z") }
        #expect(try Policy(toml: "[consent]\nsources = [\"gcm\", \"candor\"]", name: "z").consentSources == [.gcm, .candor])
    }
}

extension LiveServerTests {
    @Suite struct CNILExemptServedTests {
        /// Against the running binary, under concurrent posts to a cnil-exempt site and a default
        /// one from two addresses of one /24 with one browser: the exempt site's rows hold no
        /// subject, campaign value, click id (nor its kind) or referrer path, its two addresses
        /// make one visitor and look up no city (both truncated to 89.160.20.0 before any use),
        /// and none of the values it was sent is anywhere in the database, its WAL or the log;
        /// the default site keeps what its consent allows (so the scan can find such bytes).
        /// Webhooks are refused for the exempt site, by the CLI and by the endpoint.
        @Test func theExemptSiteKeepsAudienceMeasurementOnly() async throws {
            let install = try await LiveInstall(serve: ["--geoip-city", Fixtures.cityDB], policyFiles: ["cnil-exempt.toml"])
            defer { install.stop() }
            let exempt = try install.cli(["sites", "add", "--name", "Exempt", "--domain", "exempt.example", "--policy", "cnil-exempt"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let plain = try install.cli(["sites", "add", "--name", "Plain", "--domain", "plain.example"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            // The server reloads its sites for an unknown id at most every 2 s.
            try await Task.sleep(for: .seconds(2.5))
            let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
            @Sendable func event(_ site: String, _ tag: String, _ n: Int) -> String {
                let host = site == exempt ? "exempt.example" : "plain.example"
                return #"{"site":"\#(site)","url":"https://\#(host)/landing?utm_source=news&utm_campaign=\#(tag)campaign&gclid=\#(tag.uppercased())CLICK","#
                    + #""referrer":"https://www.reddit.com/r/\#(tag)-ref-path","id":"\#(tag)-\#(n)","#
                    + #""consent":{"analytics":true,"marketing":true},"subject":"\#(tag)-subject-0123456789abcdef"}"#
            }
            let statuses = try await withThrowingTaskGroup(of: [UInt].self) { group in
                for task in 0..<4 {
                    group.addTask {
                        try await TestClient.withClient(host: "127.0.0.1", port: install.server.port) { client in
                            var out: [UInt] = []
                            for n in stride(from: task, to: 40, by: 4) {
                                for (site, tag) in [(exempt, "exempt"), (plain, "plain")] {
                                    let headers: HTTPFields = [.contentType: "text/plain", .userAgent: ua,
                                                               .init("X-Forwarded-For")!: "89.160.20.\(112 + n % 2)"]
                                    let r = try await client.post("/api/event", headers: headers, body: ByteBuffer(string: event(site, tag, n)))
                                    out.append(UInt(r.status.code))
                                }
                            }
                            return out
                        }
                    }
                }
                var all: [UInt] = []
                for try await part in group { all += part }
                return all
            }
            #expect(statuses.count == 80 && statuses.allSatisfy { $0 == 202 }, "\(statuses)")
            // A conversion from the pixel, carrying the visit's campaign values as it does: counted as
            // an event, its campaign and click-id properties dropped, no attributed conversion.
            let conversion = #"{"site":"\#(exempt)","name":"conversion","url":"https://exempt.example/thanks","id":"exempt-conv","#
                + #""value":49,"currency":"EUR","props":{"utm_campaign":"exemptcampaign","gclid":"EXEMPTCLICK","plan":"pro"}}"#
            let posted = try await install.request(.post, "/api/event", headers: [.contentType: "text/plain", .userAgent: ua,
                                                                                  .init("X-Forwarded-For")!: "89.160.20.112"], body: conversion)
            #expect(posted.status == .accepted && posted.body.contains(#""accepted":1"#), "\(posted.body)")
            // Consent is not recorded for a site that identifies nobody.
            let record = try await install.request(.post, "/api/consent", headers: [.contentType: "text/plain", .origin: "https://exempt.example"],
                                                   body: #"{"site":"\#(exempt)","analytics":true,"marketing":true}"#)
            #expect(record.status == .conflict, "\(record.body)")
            let db = try install.database()
            let all = try db.events(site: exempt)
            #expect(all.count == 41)
            let converted = try #require(all.first { $0.name == "conversion" })
            #expect(converted.value == 49 && converted.props?.contains("plan") == true)
            #expect(try db.conversions(site: exempt).isEmpty)
            let rows = all.filter { $0.name == "pageview" }
            #expect(rows.count == 40)
            for r in rows {
                #expect(r.decision == .anonymous && r.subject == nil)
                #expect(r.utmSource == nil && r.utmCampaign == nil && r.clickID == nil && r.clickIDKind == nil)
                #expect(r.referrerHost == "reddit.com" && r.referrerPath == nil)
                #expect(r.country == nil && r.city == nil)
            }
            #expect(Set(rows.map(\.visitor)).count == 1)
            let others = try db.events(site: plain)
            #expect(others.count == 40 && others.allSatisfy { $0.decision == .identified && $0.country == "SE" })
            #expect(Set(others.map(\.visitor)).count == 2)
            for needle in ["exemptcampaign", "EXEMPTCLICK", "exempt-ref-path", "exempt-subject"] {
                #expect(install.scan(Array(needle.utf8)).values.reduce(0, +) == 0, "\(needle) on disk")
                #expect(occurrences(of: needle, inFile: install.dir.file("server.log")) == 0, "\(needle) in the log")
            }
            #expect(install.scan(Array("PLAINCLICK".utf8)).values.reduce(0, +) > 0)

            #expect(throws: (any Error).self) {
                try install.cli(["hooks", "set", "--site", exempt, "--provider", "generic", "--secret", "exempt-secret-0123456789"])
            }
            let hook = try await install.request(.post, "/hooks/generic/\(exempt)", headers: [.contentType: "application/json"], body: "{}")
            #expect(hook.status == .conflict && hook.body.contains("cnil-exempt"), "\(hook.body)")
        }
    }
}

extension LiveServerTests {
    /// Issue 16, banner texts per site: set in Settings by language, served by
    /// /api/consent/config for the page's language at once, escaped on the page, refused when
    /// too long, holding control characters, or for a language without built-in texts.
    @Suite struct BannerTextsServedTests {
        @Test func aSiteSetsItsTextsPerLanguage() async throws {
            let install = try await LiveInstall()
            defer { install.stop() }
            let owner = try await install.signIn(install.ownerEmail, install.ownerPassword)
            func save(_ body: String) async throws -> HTTPResponse.Status {
                try await install.request(.post, "/sites/\(install.site)/settings/banner",
                                          headers: [.contentType: "application/x-www-form-urlencoded", .cookie: owner.cookie],
                                          body: "csrf=\(owner.csrf)&" + body).status
            }
            func config(_ lang: String) async throws -> [String: String] {
                let r = try await install.request(.get, "/api/consent/config?site=\(install.site)&lang=\(lang)")
                #expect(r.status == .ok && r.headers[.cacheControl] == "public, max-age=300")
                let doc = try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]
                return doc?["strings"] as? [String: String] ?? [:]
            }
            #expect(try await config("fr-BE")["title"] == "Votre vie privée")
            #expect(try await save("lang=fr&title=Vos+donn%C3%A9es&reject=%3Cb%3ENon+merci%3C%2Fb%3E&accept=") == .seeOther)
            let fr = try await config("fr-BE")
            #expect(fr["title"] == "Vos données" && fr["reject"] == "<b>Non merci</b>" && fr["accept"] == "Tout accepter")
            #expect(try await config("en")["title"] == "Your privacy")
            let page = try await install.request(.get, "/sites/\(install.site)/settings?lang=fr", headers: [.cookie: owner.cookie]).body
            #expect(page.contains("value=\"&lt;b&gt;Non merci&lt;/b&gt;\"") && !page.contains("<b>Non merci"))
            #expect(try await save("lang=fr&title=" + String(repeating: "x", count: 81)) == .badRequest)
            #expect(try await save("lang=fr&title=a%07b") == .badRequest)
            #expect(try await save("lang=pt&title=Privacidade") == .badRequest)
            #expect(try await config("fr")["title"] == "Vos données")
            let audit = try install.cli(["audit", "list"])
            #expect(audit.contains("banner_texts_changed"))
        }
    }
}

extension LiveServerTests {
    /// Issue 15, consent analytics, against the running binary and a hand-computed scenario:
    /// concurrent events with and without consent, DNT and GPC, on a site that counts
    /// anonymously and on one that drops; a retried event; banners shown; four recorded choices.
    @Suite struct ConsentAnalyticsServedTests {
        @Test func theConsentPageShowsWhatWasCounted() async throws {
            let install = try await LiveInstall(policyTexts: ["strict.toml": "[consent]\nanonymous_counting = false\n"])
            defer { install.stop() }
            let strict = try install.cli(["sites", "add", "--name", "Strict", "--domain", "strict.example", "--policy", "strict"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try await Task.sleep(for: .seconds(2.5))
            let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
            let granted = #""consent":{"analytics":true,"marketing":true},"subject":"analytics-subject-0123456789""#
            // (site, id, consent fields, DNT, GPC): demo site 4 identified, 3 DNT (anonymous),
            // 2 GPC (anonymous), 1 no choice (anonymous); strict site 2 denied, 3 no choice, 1 DNT: all dropped.
            var posts: [(String, String, String, Bool, Bool)] = []
            for i in 0..<4 { posts.append((install.site, "id\(i)", granted, false, false)) }
            for i in 4..<7 { posts.append((install.site, "dnt\(i)", granted, true, false)) }
            for i in 7..<9 { posts.append((install.site, "gpc\(i)", #""consent":"unset""#, false, true)) }
            posts.append((install.site, "unset9", #""consent":"unset""#, false, false))
            for i in 0..<2 { posts.append((strict, "denied\(i)", #""consent":"denied""#, false, false)) }
            for i in 0..<3 { posts.append((strict, "missing\(i)", #""consent":"unset""#, false, false)) }
            posts.append((strict, "dntstrict", granted, true, false))
            posts.append((install.site, "id0", granted, false, false))  // a retry: stored once, counted once
            let port = install.server.port
            let accepted = try await withThrowingTaskGroup(of: Int.self) { group in
                for (n, p) in posts.enumerated() {
                    group.addTask {
                        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
                            var headers: HTTPFields = [.contentType: "text/plain", .userAgent: ua, .init("X-Forwarded-For")!: "81.2.69.\(n + 10)"]
                            if p.3 { headers[.init("DNT")!] = "1" }
                            if p.4 { headers[.init("Sec-GPC")!] = "1" }
                            let host = p.0 == strict ? "strict.example" : "localhost"
                            let body = #"{"site":"\#(p.0)","url":"https://\#(host)/x","id":"\#(p.1)",\#(p.2)}"#
                            let r = try await client.post("/api/event", headers: headers, body: ByteBuffer(string: body))
                            #expect(r.status == .accepted)
                            return r.body.map { String(buffer: $0) }?.contains(#""accepted":1"#) == true ? 1 : 0
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(accepted == 10)
            let origin: HTTPFields = [.contentType: "text/plain", .origin: "http://127.0.0.1"]
            for _ in 0..<3 {
                #expect(try await install.request(.post, "/api/consent/shown", headers: origin, body: #"{"site":"\#(install.site)"}"#).status == .noContent)
            }
            for (a, m) in [(true, true), (true, true), (false, false), (true, false)] {
                let r = try await install.request(.post, "/api/consent", headers: origin,
                                                  body: #"{"site":"\#(install.site)","analytics":\#(a),"marketing":\#(m)}"#)
                #expect(r.status == .created, "\(r.body)")
            }
            let owner = try await install.signIn(install.ownerEmail, install.ownerPassword)
            let page = try await install.request(.get, "/consent?days=7", headers: [.cookie: owner.cookie]).body
                .replacingOccurrences(of: "\n", with: "")
            // Demo site: 3 shown; 4 choices: 2 all (50 %), 1 none (25 %), 1 analytics only (25 %);
            // analytics 3/4, marketing 2/4; 10 events, 4 identified; DNT 3/10, GPC 2/10; no drops.
            #expect(page.contains("<td>3</td><td>4</td><td>50.0\u{00A0}%</td><td>25.0\u{00A0}%</td><td>25.0\u{00A0}%</td><td>75.0\u{00A0}%</td><td>50.0\u{00A0}%</td>"
                                  + "<td>10</td><td>40.0\u{00A0}%</td><td>30.0\u{00A0}%</td><td>20.0\u{00A0}%</td><td>0</td><td>0</td><td>0</td>"), "\(page)")
            // Strict site: nothing stored; 2 denied, 3 without a choice, 1 DNT of 6 (16.7 %).
            #expect(page.contains("<td>0</td><td>0</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td>"
                                  + "<td>0</td><td>–</td><td>16.7\u{00A0}%</td><td>0.0\u{00A0}%</td><td>2</td><td>3</td><td>1</td>"), "\(page)")
            let detail = try await install.request(.get, "/consent?days=7&site=\(install.site)", headers: [.cookie: owner.cookie]).body
            #expect(detail.contains("by day") && detail.contains("candor 4"))
        }
    }
}
