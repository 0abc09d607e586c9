import Foundation
import Store
public import Storage

/// One HTTP request a delivery makes.
public struct OutboundRequest: Sendable, Equatable {
    public var method = "POST"
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?

    public init(method: String = "POST", url: String, headers: [(String, String)], body: [UInt8]?) {
        self.method = method; self.url = url; self.headers = headers; self.body = body
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.method == b.method && a.url == b.url && a.body == b.body && a.headers.map { "\($0.0):\($0.1)" } == b.headers.map { "\($0.0):\($0.1)" }
    }
}

/// A destination's answer.
public struct Answer: Sendable {
    public var status: Int
    /// `Retry-After` as ms since 1970.
    public var retryAfter: Int64?
    public var body: [UInt8]
    public var ok: Bool { (200..<300).contains(status) }
    public var json: Any? { try? JSONSerialization.jsonObject(with: Data(body)) }
    var excerpt: String { String(decoding: body.prefix(200), as: UTF8.self).filter { !$0.isNewline } }
}

/// Sends one request (the delivery service's HTTP client; a test's stand-in).
public struct Exchange: Sendable {
    let send: @Sendable (OutboundRequest) async throws -> Answer
    public init(_ send: @escaping @Sendable (OutboundRequest) async throws -> Answer) { self.send = send }
    func callAsFunction(_ r: OutboundRequest) async throws -> Answer { try await send(r) }
}

/// What one delivery needs, opened.
public struct Job: Sendable {
    public var facts: DeliveryFacts
    /// e-mail and name (CRMs only; empty otherwise).
    public var contact: [String: String]
    public var eventID: String
    public var settings: [String: String]
    public var credential: String
    public var siteDomain: String?
    public var now: Int64
}

/// How a delivery ended, before the retry policy.
public enum Delivered: Sendable {
    case done(status: Int)
    /// A CRM with no (or no single) matching person: nothing is created.
    case notFound(status: Int)
    case skipped(String)
    /// A non-2xx answer: retried (408, 425, 429, 5xx) or dead-lettered.
    case refused(Answer)
}

extension DestinationKind {
    /// Carries out the delivery: one request for ad platforms and webhooks, a search then an
    /// update for CRMs.
    func deliver(_ job: Job, _ exchange: Exchange) async throws -> Delivered {
        switch self {
        case .pipedrive: return try await CRM.pipedrive(job, exchange)
        case .hubspot: return try await CRM.hubspot(job, exchange)
        case .googleads: return try await GoogleAds.deliver(job, exchange)
        default:
            switch map(job.facts, eventID: job.eventID, settings: job.settings, credential: job.credential, siteDomain: job.siteDomain, now: job.now) {
            case .skip(let reason): return .skipped(reason)
            case .send(let request):
                let answer = try await exchange(request)
                return answer.ok ? .done(status: answer.status) : .refused(answer)
            }
        }
    }
}
