import Consent
import Foundation
public import Hummingbird
import HTTPTypes
import JSONOutput
import NIOCore
import Privacy
import Store

/// The gate of the browser endpoints that concern a visitor's own data: `POST /api/privacy/export`,
/// `POST /api/privacy/forget` and `POST /api/consent`.
///
/// In order, each step cheap before the next: a body of at most 4 KiB, a known site, an `Origin`
/// header naming one of the site's domains (these are browser endpoints: no Origin, no answer),
/// at most `perClient` requests per client address (the resolved address, as a keyed hash in
/// memory), a well-formed privacy key (``Privacy/PrivacyKey``) when a subject is concerned; then
/// the endpoint checks that anything is held for the subject (export, forget) and applies its
/// per-subject limit (``limit(_:subject:_:)``). Only then does any work (an export, a filed
/// request, a stored record) happen. No bucket is shared by a whole site, so nobody can use up a
/// real visitor's allowance with made-up keys.
public final class SelfServiceGate: Sendable {
    public struct Limits: Sendable {
        /// Privacy requests per client address (export and forget): sustained per second, burst.
        public var perClient: (rate: Double, burst: Double) = (10.0 / 60, 10)
        /// Consent records per client address: more, since every banner click behind one address
        /// (an office, a carrier's NAT) shares it.
        public var consentsPerClient: (rate: Double, burst: Double) = (1, 60)
        public var exportsPerSubject: (rate: Double, burst: Double) = (1.0 / 60, 3)
        public var forgetsPerSubject: (rate: Double, burst: Double) = (1.0 / 600, 2)
        public var consentsPerSubject: (rate: Double, burst: Double) = (1.0 / 60, 10)
        public init() {}
    }

    public enum Endpoint: Sendable { case export, forget, consent }

    let collector: Collector
    let clients: RateLimiter
    let consentClients: RateLimiter
    let exports: RateLimiter
    let forgets: RateLimiter
    let consents: RateLimiter

    public init(collector: Collector, limits: Limits = Limits()) {
        self.collector = collector
        func subjectLimiter(_ l: (rate: Double, burst: Double)) -> RateLimiter {
            RateLimiter(limits: .init(perSite: (1e9, 1e9), perClient: l))
        }
        clients = subjectLimiter(limits.perClient)
        consentClients = subjectLimiter(limits.consentsPerClient)
        exports = subjectLimiter(limits.exportsPerSubject)
        forgets = subjectLimiter(limits.forgetsPerSubject)
        consents = subjectLimiter(limits.consentsPerSubject)
    }

    /// What a request that passed the gate carries.
    struct Admitted {
        var doc: JSONValue
        var site: Site
        var policy: Policy
        /// The subject the privacy key stands for, when one was sent.
        var subject: (id: String, hash: Int64)?
    }

    /// Runs the gate. `keyRequired`: the endpoint concerns a subject and refuses a request without a key.
    func admit(_ request: Request, peer: SocketAddress?, endpoint: Endpoint) async -> Result<Admitted, Refusal> {
        let keyRequired = endpoint != .consent
        let doc: JSONValue
        switch await readJSON(request, limit: 4096) {
        case .failure(let r): return .failure(r)
        case .success(let d): doc = d
        }
        guard case .string(let siteID)? = doc["site"] else { return .refuse(withOrigin(jsonError(400, "no site"), request)) }
        // An archived site records no consent; a visitor's export and erasure still reach it.
        guard let (site, policy) = collector.site(siteID, archived: endpoint != .consent) else {
            return .refuse(withOrigin(jsonError(404, "unknown site \(siteID.prefix(64))"), request))
        }
        guard let origin = request.headers[.origin] else {
            return .refuse(jsonError(403, "this endpoint answers browsers only: the request has no Origin"))
        }
        guard originAllowed(origin, for: site) else {
            return .refuse(withOrigin(jsonError(403, "origin \(origin.prefix(200)) is not registered for site \(site.id)"), request))
        }
        let now = collector.now().timeIntervalSince1970
        let address = usableAddress(collector.addresses.resolve(peer: peer?.ipAddress, forwardedFor: request.headers[.xForwardedFor]),
                                    under: policy) ?? ""
        // IPv6 clients are counted by their /64: one subscriber holds a whole /64.
        let clientKey = collector.pipeline.deps.limiterKey.withBytes { key in
            Array(ClientAddressResolver.limitKey(address).utf8).withUnsafeBytes { Sodium.keyedHash64(key: key, message: $0) }
        }
        if let retry = (endpoint == .consent ? consentClients : clients).admit(site: "", client: clientKey, count: 1, now: now) {
            return .refuse(tooMany(retry, request))
        }
        var admitted = Admitted(doc: doc, site: site, policy: policy)
        if case .string(let key)? = doc["key"] {
            guard let subject = PrivacyKey.subject(forKey: key) else {
                return .refuse(withOrigin(jsonError(400, "the privacy key is malformed"), request))
            }
            admitted.subject = (subject, collector.pipeline.deps.subjects.hash(subject))
        } else if keyRequired, let sent = doc["subject"], sent != .null {
            // A subject id alone proves nothing: it is the attribution token sites put in URLs.
            return .refuse(withOrigin(jsonError(400, "a subject id alone proves nothing: send the browser's privacy key (key)"), request))
        } else if keyRequired {
            return .refuse(withOrigin(jsonError(400, "no privacy key: this browser has not agreed to be recognised, so nothing is linked to it"),
                                      request))
        }
        return .success(admitted)
    }

    /// The per-subject limit of an endpoint; an answer when it is used up.
    func limit(_ endpoint: Endpoint, subject hash: Int64, _ request: Request) -> Response? {
        let limiter = switch endpoint {
        case .export: exports
        case .forget: forgets
        case .consent: consents
        }
        return limiter.admit(site: "", client: hash, count: 1, now: collector.now().timeIntervalSince1970).map { tooMany($0, request) }
    }

    func tooMany(_ retry: Int, _ request: Request) -> Response {
        var r = jsonError(429, "too many requests; retry after \(retry) s")
        r.headers[.retryAfter] = String(retry)
        return withOrigin(r, request)
    }
}
