public import Consent
public import Foundation
public import Geo
public import Privacy
public import Store
public import Storage
public import Traffic
import JSONOutput

/// Facts about the request that carried the events. The IP address and user agent live only
/// here, in memory, for the duration of the request: no step copies them into a row, a log
/// line or an error message.
public struct RequestFacts: Sendable {
    public var ip: String?
    public var userAgent: String
    /// Sec-Purpose / Purpose / X-Purpose / X-Moz, when the browser sends one.
    public var purpose: String?
    public var signals: PrivacySignals
    public var now: Date
    /// `now` in whole milliseconds since 1970: an event's time when the browser gives none.
    public var nowMs: Int64 { Int64((now.timeIntervalSince1970 * 1000).rounded(.down)) }

    public init(ip: String?, userAgent: String, purpose: String? = nil, signals: PrivacySignals = .init(), now: Date) {
        self.ip = ip; self.userAgent = userAgent; self.purpose = purpose; self.signals = signals; self.now = now
    }
}

/// The result of running a request's events through the pipeline.
public struct PipelineResult: Sendable {
    public var rows: [EventRow] = []
    public var drops: [DropReason: Int] = [:]
    /// Set when the rate-limit step refused the request; retry after this many seconds.
    public var retryAfter: Int?
    /// Set when the bot step dropped the request's events: the layer that decided.
    public var botLayer: BotLayer?
    /// Visitor hashes of events that refuse or object, stored or dropped for consent
    /// (ForwardingGate.withdraws).
    public var withdrawn: Set<Int64> = []
}

/// The ingestion pipeline: an ordered list of named steps. Each step reads and enriches one
/// event or drops it with a typed reason (counted in /metrics). Work that depends only on the
/// request (bot check, rate limit, geo, visitor hash, user agent) is done once per request.
public struct Pipeline: Sendable {
    public struct Dependencies: Sendable {
        public var geo: any GeoLookup
        public var salts: SaltKeeper
        public var subjects: SubjectHasher
        public var limiter: RateLimiter
        /// Per-process random key for the rate limiter's client hash (never stored).
        public var limiterKey: SecretBytes
        public let traffic: TrafficClassifier
        let userAgents: UserAgentCache
        /// Seals the contact (e-mail, name) of forwardable leads for CRM destinations; nil: none kept.
        public var contactBox: SecretBox?

        public init(geo: any GeoLookup, salts: SaltKeeper, subjects: SubjectHasher, limiter: RateLimiter,
                    traffic: TrafficClassifier = .installed, contactBox: SecretBox? = nil) {
            self.geo = geo; self.salts = salts; self.subjects = subjects; self.limiter = limiter; self.contactBox = contactBox
            self.limiterKey = SecretBytes(random: 32)
            self.traffic = traffic
            self.userAgents = UserAgentCache(traffic: traffic)
        }
    }

    /// Per-request scratch: lazily computed, shared by the request's events.
    final class Scope {
        let site: Site
        let policy: Policy
        let facts: RequestFacts
        let deps: Dependencies
        let eventCount: Int
        /// The site's day the request arrived on.
        lazy var receivedDay: Int64 = site.calendar.day(of: facts.nowMs)
        lazy var agent: UserAgentCache.Entry = deps.userAgents.lookup(facts.userAgent)
        /// The layer that found a bot (a speculative load is decided per request), or nil.
        lazy var botLayer: BotLayer? = facts.purpose.map(TrafficClassifier.isSpeculative) == true ? .speculative
            : agent.bot ?? (policy.dropDatacenterNetworks ? deps.traffic.networkLayer(asn: geo.asn) : nil)
        /// The client address every step uses: truncated first under the cnil-exempt mode (for
        /// the rate limit, the geo lookup and the visitor hash alike).
        lazy var ip: String? = usableAddress(facts.ip, under: policy)
        lazy var retryAfter: Int? = {
            let ip = self.ip ?? ""
            let client = deps.limiterKey.withBytes { key in
                Array(ip.utf8).withUnsafeBytes { Sodium.keyedHash64(key: key, message: $0) }
            }
            return deps.limiter.admit(site: site.id, client: client, count: eventCount,
                                      now: facts.now.timeIntervalSince1970)
        }()
        lazy var geo: GeoResult = ip.map { deps.geo.lookup($0) } ?? .unknown
        lazy var hashes: (current: Int64, previous: Int64?)? = try? deps.salts.visitorHashes(
            site: site.id, ip: ip ?? "", userAgent: facts.userAgent, now: facts.now, calendar: site.calendar)
        lazy var userAgent: ReducedUserAgent = agent.reduced

        init(site: Site, policy: Policy, facts: RequestFacts, deps: Dependencies, eventCount: Int) {
            self.site = site; self.policy = policy; self.facts = facts; self.deps = deps; self.eventCount = eventCount
        }
    }

    /// One event on its way through the steps.
    struct Working {
        var incoming: IncomingEvent
        /// The page URL, parsed once.
        var page: LightURL?
        var decision: ConsentDecision = .anonymous
        var row: EventRow
    }

    struct Step: Sendable {
        let name: String
        let run: @Sendable (inout Working, Scope) -> DropReason?
    }

    /// The steps, in order (DESIGN.md, "Data flow").
    static let steps: [Step] = [
        Step(name: "bot") { _, scope in scope.botLayer != nil ? .bot : nil },
        Step(name: "rate_limit") { _, scope in scope.retryAfter != nil ? .rateLimited : nil },
        Step(name: "consent") { w, scope in
            w.decision = ConsentDecider.decide(policy: scope.policy, state: w.incoming.consent, source: w.incoming.consentSource,
                                                signals: scope.facts.signals)
            switch w.decision {
            case .drop(let cause):
                switch cause {
                case .consentDenied: return .consentDenied
                case .consentMissing: return .consentMissing
                case .optOutSignal: return .optOutSignal
                }
            case .anonymous:
                w.row.decision = .anonymous
            case .identified:
                w.row.decision = .identified
            }
            w.row.forwardable = ForwardingGate.allows(policy: scope.policy, state: w.incoming.consent, source: w.incoming.consentSource,
                                                      decision: w.decision, signals: scope.facts.signals)
            w.row.doNotTrack = scope.facts.signals.doNotTrack
            w.row.globalPrivacyControl = scope.facts.signals.globalPrivacyControl
            return nil
        },
        Step(name: "geo") { w, scope in
            let precision: GeoResult.Precision = switch ConsentDecider.geoLevel(policy: scope.policy, decision: w.decision) {
            case .none: .none
            case .country: .country
            case .region: .region
            case .city: .city
            }
            let g = scope.geo.coarsened(to: precision, keepASN: scope.policy.keepASN)
            w.row.country = g.country; w.row.region = g.region; w.row.city = g.city
            w.row.asn = g.asn; w.row.asnOrg = g.asnOrg
            return nil
        },
        Step(name: "visitor_hash") { w, scope in
            // A failure to persist a new salt must not store an unsalted identifier: no hash, no row.
            guard let hashes = scope.hashes else { return .saltUnavailable }
            // An event dated yesterday (a queued one) takes yesterday's salt while it is still kept
            // (the hour after midnight); an older one takes today's: a past day's salt is gone.
            let day = scope.site.calendar.day(of: w.row.timestamp)
            if let previous = hashes.previous, day == scope.receivedDay - 1 {
                w.row.visitor = previous
            } else {
                w.row.visitor = hashes.current
                w.row.previousVisitor = hashes.previous
            }
            w.row.late = day < scope.receivedDay
            if case .identified = w.decision, let subject = w.incoming.subject {
                w.row.subject = scope.deps.subjects.hash(subject)
            }
            return nil
        },
        Step(name: "user_agent") { w, scope in
            let ua = scope.userAgent
            w.row.browser = ua.browser; w.row.browserVersion = ua.browserVersion; w.row.os = ua.os; w.row.device = ua.device
            w.row.screen = Classifier.screenBucket(w.incoming.screen)
            return nil
        },
        Step(name: "attribution") { w, scope in
            let page = w.page
            let a = Classifier.attribution(page: page, referrer: w.incoming.referrer, siteDomains: scope.site.domains,
                                           keepClickID: w.decision.allowsMarketing, referrers: scope.deps.traffic.referrers,
                                           audienceOnly: scope.policy.mode == .cnilExempt)
            w.row.sourceType = a.acquisition.sourceType
            w.row.channel = a.acquisition.channel.rawValue
            w.row.sourceName = a.acquisition.source?.name
            w.row.referrerHost = a.referrerHost; w.row.referrerPath = a.referrerPath
            w.row.utmSource = a.utmSource; w.row.utmMedium = a.utmMedium; w.row.utmCampaign = a.utmCampaign
            w.row.utmTerm = a.utmTerm; w.row.utmContent = a.utmContent
            w.row.clickIDKind = a.clickIDKind; w.row.clickID = a.clickID
            return nil
        },
        Step(name: "minimize") { w, scope in
            let page = w.page
            var path = Minimize.path(page?.path ?? "/")
            let kept = (page?.query ?? []).filter { scope.policy.queryAllowlist.contains($0.0) }
            if !kept.isEmpty {
                path += "?" + kept.map { "\($0.0)=\(Minimize.value(String($0.1.prefix(100))))" }.joined(separator: "&")
            }
            w.row.path = path
            // Form values ("field.NAME" props) survive only under marketing consent and the policy's allowlist.
            // Under cnil-exempt, campaign values and click ids (which the pixel adds to conversions)
            // are not kept as properties either, and no conversion is attributed.
            let audienceOnly = scope.policy.mode == .cnilExempt
            if audienceOnly { w.row.attributable = false }
            var props = w.incoming.props.filter { key, _ in
                if audienceOnly && Policy.isCampaignKey(key) { return false }
                guard key.hasPrefix("field.") else { return true }
                return w.decision.allowsMarketing && scope.policy.formFieldAllowlist.contains(String(key.dropFirst(6)))
            }
            // An e-mail address is never stored in the clear: it becomes the keyed hash that links a
            // lead to deletion and export requests (and conversions) for that address.
            func email(_ p: (String, PropValue)) -> String? {
                guard p.0.hasPrefix("field."), case .string(let s) = p.1 else { return nil }
                let trimmed = s.trimmingCharacters(in: .whitespaces)
                return Minimize.looksLikeEmail(Substring(trimmed)) ? trimmed : nil
            }
            if let address = props.lazy.compactMap(email).first {
                w.row.emailHash = scope.deps.subjects.hash(address, kind: .email)
                if w.row.forwardable, let box = scope.deps.contactBox {
                    w.row.forwardEmailSHA256 = box.sealText(Minimize.emailSHA256(address))
                    var contact = ["email": address]
                    for key in ["name", "first_name", "last_name"] {
                        if let (_, value) = props.first(where: { $0.0 == "field." + key }), case .string(let s) = value { contact[key] = s }
                    }
                    w.row.forwardContact = box.seal(Array(JSON.object(contact.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }).text.utf8))
                }
                props.removeAll { email($0) != nil }
            }
            // A phone number leaves (as Meta's hashed ph) only in international form, under the same gate.
            if w.row.forwardable, let box = scope.deps.contactBox,
               let (_, value) = props.first(where: { $0.0 == "field.phone" }), case .string(let number) = value,
               let digest = Minimize.phoneSHA256(number) {
                w.row.forwardPhoneSHA256 = box.sealText(digest)
            }
            w.row.props = PropsEncoder.encode(props)
            if w.incoming.value != nil {
                w.row.value = w.incoming.value
                w.row.currency = w.incoming.currency
            }
            w.row.engagedMs = w.incoming.engagedMs.map(Int64.init)
            w.row.scroll = w.incoming.scroll.map(Int64.init)
            return nil
        },
    ]

    /// Names of the steps in order (documentation, /health).
    public static var stepNames: [String] { steps.map(\.name) }

    public let deps: Dependencies

    public init(deps: Dependencies) { self.deps = deps }

    public func run(_ events: [IncomingEvent], site: Site, policy: Policy, facts: RequestFacts) -> PipelineResult {
        let scope = Scope(site: site, policy: policy, facts: facts, deps: deps, eventCount: events.count)
        var result = PipelineResult()
        result.rows.reserveCapacity(events.count)
        let ms = facts.nowMs
        events: for incoming in events {
            var w = Working(incoming: incoming, page: LightURL(incoming.url),
                            row: EventRow(siteID: site.id, clientID: incoming.id, timestamp: incoming.clientTime ?? ms, name: incoming.name,
                                          path: "/", decision: .anonymous, visitor: 0, sourceType: "direct"))
            var dropped: DropReason?
            for step in Self.steps {
                if let reason = step.run(&w, scope) { dropped = reason; break }
            }
            // A refusal or objection, stored (counted anonymously) or dropped for consent, withdraws
            // forwarding from the visitor's visits: it may open a new visit, or none.
            if dropped == nil || dropped == .consentDenied || dropped == .optOutSignal,
               ForwardingGate.withdraws(state: incoming.consent, signals: facts.signals), let hashes = scope.hashes {
                result.withdrawn.insert(hashes.current)
                if let previous = hashes.previous { result.withdrawn.insert(previous) }
            }
            if let dropped {
                result.drops[dropped, default: 0] += 1
                continue events
            }
            result.rows.append(w.row)
        }
        // Only a request whose events reached the rate-limit step (and were refused there) is a 429.
        if result.drops[.rateLimited] != nil { result.retryAfter = scope.retryAfter }
        if result.drops[.bot] != nil { result.botLayer = scope.botLayer }
        return result
    }
}

/// Encodes props as a compact JSON object, with values minimized.
enum PropsEncoder {
    static func encode(_ props: [(String, PropValue)]) -> String? {
        guard !props.isEmpty else { return nil }
        var out = "{"
        for (i, (key, value)) in props.enumerated() {
            if i > 0 { out += "," }
            out += JSONText.quoted(key) + ":"
            switch value {
            case .string(let s): out += JSONText.quoted(Minimize.value(s))
            case .number(let d): out += JSONText.number(d)
            case .bool(let b): out += b ? "true" : "false"
            }
        }
        return out + "}"
    }
}

