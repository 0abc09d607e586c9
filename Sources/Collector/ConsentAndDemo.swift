import Consent
import Foundation
import JSONOutput
public import Hummingbird
import NIOCore
import Privacy
import Store
import Storage

/// POST /api/consent (proof of consent from the banner) and the /demo client site.
public struct ConsentRoutes<Context: RemoteAddressRequestContext>: Sendable {
    let collector: Collector
    let assets: PublicAssets?
    let gate: SelfServiceGate

    public init(collector: Collector, assets: PublicAssets?, gate: SelfServiceGate) {
        self.collector = collector
        self.assets = assets
        self.gate = gate
    }

    public func add(to router: Router<Context>) {
        router.post("/api/consent") { request, context in await self.record(request, context) }
        router.on("/api/consent", method: .options) { request, _ in
            CollectorRoutes<Context>(collector: collector).preflight(request)
        }
        router.get("/api/consent/config") { request, _ in self.config(request) }
        router.post("/api/consent/shown") { request, context in await self.shown(request, context) }
        if let assets {
            router.get("/demo") { _, _ in self.demo(page: 1, assets) }
            router.get("/demo/second") { _, _ in self.demo(page: 2, assets) }
            router.post("/demo/second") { _, _ in self.demo(page: 2, assets) }
            router.get("/demo/spa-view") { _, _ in self.demo(page: 3, assets) }
        }
    }

    /// `GET /api/consent/config?site=ID&lang=TAG`: what consent.js needs from the site's policy:
    /// the sources to read in order, the TCF vendor to require, the mode, the version a stored
    /// choice must carry (a new policy or version asks again) and the banner's texts in the
    /// page's language. Public (it is what every visitor's banner shows), cached five minutes.
    func config(_ request: Request) -> Response {
        let query = request.uri.queryParameters
        // Read from the database, not the collector's cache: a change in Settings shows at once.
        guard let id = query.get("site"), let site = try? collector.database.site(id: id), site.archivedAt == nil else {
            return withOrigin(jsonError(404, "unknown site"), request)
        }
        let policy = collector.policies[site.policy] ?? .default
        let language = BannerTexts.language(query.get("lang"))
        let body: JSON = [
            "version": .string("\(policy.name)/\(policy.version)"),
            "mode": .string(policy.mode.rawValue),
            "sources": .array(policy.consentSources.map { .string($0.rawValue) }),
            "tcf_vendor_id": JSON(policy.tcfVendorID),
            "lang": .string(language),
            "strings": .object(BannerTexts.texts(language, overrides: site.bannerTexts).map { ($0.0, JSON.string($0.1)) }),
            "css": .string(assets?.assets["consent.css"]?.versionedPath ?? "/consent.css"),
        ]
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "public, max-age=300",
                                               .accessControlAllowOrigin: "*", .vary: "Accept-Encoding"],
                         body: .init(byteBuffer: ByteBuffer(string: body.text)))
    }

    /// `POST /api/consent/shown {"site": ID}`: Candor's banner opened by itself (not from the
    /// settings button) on a page: one more "banner shown" in the site's consent counts. Nothing
    /// about the visitor is kept. Behind the same gate as consent records.
    func shown(_ request: Request, _ context: Context) async -> Response {
        let admitted: SelfServiceGate.Admitted
        switch await gate.admit(request, peer: context.remoteAddress, endpoint: .consent) {
        case .failure(let refusal): return refusal.response
        case .success(let a): admitted = a
        }
        var tally = ConsentTally(site: admitted.site.id)
        tally.add(.bannerShown, day: admitted.site.calendar.day(of: Int64(collector.now().timeIntervalSince1970 * 1000)))
        do { try collector.database.add(tally) } catch {
            return withOrigin(jsonError(503, "storage unavailable; retry later"), request)
        }
        return withOrigin(Response(status: .noContent), request)
    }

    /// A proof-of-consent record from the banner. It is linked to a subject only with the
    /// browser's privacy key, and only for analytics consent; a subject id without the key (what
    /// banners before keys send) proves nothing, so that record is kept unlinked.
    func record(_ request: Request, _ context: Context) async -> Response {
        let admitted: SelfServiceGate.Admitted
        switch await gate.admit(request, peer: context.remoteAddress, endpoint: .consent) {
        case .failure(let refusal): return refusal.response
        case .success(let a): admitted = a
        }
        let (doc, site, policy) = (admitted.doc, admitted.site, admitted.policy)
        guard case .bool(let analytics)? = doc["analytics"], case .bool(let marketing)? = doc["marketing"] else {
            return withOrigin(jsonError(400, "a consent record needs site, analytics and marketing"), request)
        }
        var banner = "custom"
        if case .string(let b)? = doc["banner"] { banner = String(b.prefix(32)) }
        let source: ConsentSource, cmp: ConsentRecord.CMPDetails
        switch Self.cmpDetails(doc) {
        case .failure(let error): return withOrigin(jsonError(400, error.description), request)
        case .success(let found): (source, cmp) = found
        }
        guard !policy.mode.neverIdentifies else {
            return withOrigin(jsonError(409, "the site's policy (\(policy.mode.rawValue)) identifies nobody: there is no consent to record"), request)
        }
        guard policy.consentSources.contains(source) else {
            return withOrigin(jsonError(409, "the site's policy does not take consent from \(source.rawValue) (consent.sources)"), request)
        }
        var subject: Int64?
        if analytics, let proven = admitted.subject {
            if let limited = gate.limit(.consent, subject: proven.hash, request) { return limited }
            subject = proven.hash
        }
        var record = ConsentRecord(siteID: site.id, timestamp: Int64(collector.now().timeIntervalSince1970 * 1000),
                                   bannerVersion: banner, policy: policy.name, policyVersion: policy.version,
                                   analytics: analytics, marketing: marketing, subject: subject)
        record.source = source.rawValue
        record.cmp = cmp
        do { try collector.database.insertConsentRecord(record) } catch {
            return withOrigin(jsonError(503, "storage unavailable; retry later"), request)
        }
        return withOrigin(Response(status: .created, headers: [.contentType: "application/json"],
                                   body: .init(byteBuffer: ByteBuffer(string: "{\"recorded\":true,\"linked\":\(subject != nil)}"))), request)
    }

    /// The source of a recorded choice and what its CMP reported: `source` (candor, tcf, gcm;
    /// candor when absent); for tcf `cmp_id`, `cmp_version`, `tcf_policy_version` (integers) and
    /// `purposes` (the purpose ids consented to, 1-24); for gcm `signals` (Consent Mode v2's
    /// four storage types, granted or denied). Anything else, or a TC string, is refused.
    static func cmpDetails(_ doc: JSONValue) -> Result<(ConsentSource, ConsentRecord.CMPDetails), WireError> {
        var source = ConsentSource.candor
        if let v = doc["source"] {
            guard case .string(let name) = v, let known = ConsentSource(rawValue: name) else {
                return .failure(WireError("source must be candor, tcf or gcm"))
            }
            source = known
        }
        var cmp = ConsentRecord.CMPDetails()
        func small(_ key: String) throws(WireError) -> Int? {
            guard let v = doc[key] else { return nil }
            guard case .number(let n) = v, n.rounded() == n, (0...65_535).contains(n) else { throw WireError("\(key) must be an integer 0-65535") }
            return Int(n)
        }
        do throws(WireError) {
            if source == .tcf {
                cmp.cmpID = try small("cmp_id"); cmp.cmpVersion = try small("cmp_version")
                cmp.tcfPolicyVersion = try small("tcf_policy_version")
                if let v = doc["purposes"] {
                    guard case .array(let items) = v, items.count <= 24 else { throw WireError("purposes must be a list of purpose ids") }
                    var ids: Set<Int> = []
                    for item in items {
                        guard case .number(let n) = item, n.rounded() == n, (1...24).contains(n) else { throw WireError("purposes are integers 1-24") }
                        ids.insert(Int(n))
                    }
                    cmp.purposes = ids.sorted().map(String.init).joined(separator: ",")
                }
            }
            if source == .gcm, let v = doc["signals"] {
                guard case .object(let members) = v else { throw WireError("signals must be an object") }
                let known: Set<String> = ["analytics_storage", "ad_storage", "ad_user_data", "ad_personalization"]
                var pairs: [String] = []
                for (key, value) in members {
                    guard known.contains(key), case .string(let state) = value, state == "granted" || state == "denied" else {
                        throw WireError("signals takes \(known.sorted().joined(separator: ", ")) as granted or denied")
                    }
                    pairs.append("\(key)=\(state)")
                }
                cmp.signals = pairs.sorted().joined(separator: ",")
            }
        } catch { return .failure(error) }
        return .success((source, cmp))
    }

    func demo(page: Int, _ assets: PublicAssets) -> Response {
        let site = (try? collector.database.sites())?.first(where: { $0.name == "Demo site" })
        guard let site, let pixel = assets.assets["pixel.js"], let banner = assets.assets["consent.js"] else {
            return jsonError(404, "no demo site: run candor init")
        }
        let id = HTML.escape(site.id)
        let demoCSS = assets.assets["demo.css"].map { "<link rel=\"stylesheet\" href=\"\($0.versionedPath)\">" } ?? ""
        let demoJS = assets.assets["demo.js"].map { "<script src=\"\($0.versionedPath)\" defer></script>" } ?? ""
        let other = page == 1 ? ("/demo/second", "Second page") : ("/demo", "First page")
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Candor demo — page \(page)</title>
            \(demoCSS)
            <script src="\(pixel.versionedPath)" data-site="\(id)" defer></script>
            <script src="\(banner.versionedPath)" data-site="\(id)" defer></script>\(demoJS)
            </head><body><main>
            <h1>Candor demo site — page \(page)</h1>
            <p>This page loads <code>pixel.js</code> and the consent banner for the demo site <code>\(id)</code>.
            Every click below is an event; the dashboard's real-time page shows them arrive.</p>
            <nav><a href="\(other.0)" id="nav-link">\(other.1)</a> · <a href="#" id="spa-link" data-spa="/demo/spa-view">SPA navigation</a></nav>
            <ul>
            <li><a href="/demo/files/price-list.pdf" id="download-link">Download the price list (PDF)</a></li>
            <li><a href="https://example.org/partner" id="outbound-link">Visit our partner</a></li>
            <li><a href="tel:+442079460958" id="call-link">Call us</a></li>
            <li><button type="button" id="cta" data-candor-event="cta_click" data-candor-prop-position="hero">Sign up now</button></li>
            <li><button type="button" id="buy" data-candor-event="conversion" data-candor-prop-value="49" data-candor-prop-currency="EUR" data-candor-prop-type="sale">Buy (conversion, 49 EUR)</button></li>
            </ul>
            <form id="contact" name="contact" action="/demo/second" method="post">
            <label>E-mail <input type="email" name="email" autocomplete="off"></label>
            <label>Message <textarea name="message"></textarea></label>
            <label>Password <input type="password" name="password"></label>
            <button type="submit">Send</button>
            </form>
            <section id="your-data"><h2>Your data</h2>
            <p>After accepting the banner, this browser holds a random privacy key (the subject id it is known by
            is derived from it). With the key you can download everything this site's Candor holds on you, or ask
            for it to be erased.</p>
            <button type="button" id="export-data">Download my data</button>
            <button type="button" id="forget-me">Forget me</button>
            <p id="privacy-result" role="status"></p></section>
            <div class="spacer" aria-hidden="true"></div>
            <p id="bottom">Bottom of the page.</p>
            </main></body></html>
            """
        return Response(status: .ok, headers: [
            .contentType: "text/html; charset=utf-8",
            .contentSecurityPolicy: "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            .init("X-Content-Type-Options")!: "nosniff",
            .init("Referrer-Policy")!: "strict-origin-when-cross-origin",
        ], body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

/// Escaping for text and attribute values in HTML.
public enum HTML {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
