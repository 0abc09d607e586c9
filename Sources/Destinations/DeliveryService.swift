import AsyncHTTPClient
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import Privacy
import Synchronization
public import ServiceLifecycle
public import Store
import Storage

/// Sends the delivery outbox: every pending delivery that is due, per destination at most
/// `concurrency` at a time, retried with exponential backoff and jitter (at least what a
/// `Retry-After` asks), dead-lettered after `maxAttempts`; a destination failing
/// `breakerThreshold` times in a row is left alone for `breakerPause` (one trial request then).
/// At least once: a delivery is marked only after its answer, so one in flight when the process
/// dies is sent again; receivers deduplicate by the event id each kind sends.
public final class DeliveryService: Service, Sendable {
    public struct Options: Sendable {
        public var retryBase: Duration = .seconds(10)
        public var retryCap: Duration = .seconds(3600)
        public var maxAttempts = 8
        public var concurrency = 4
        public var breakerThreshold = 5
        public var breakerPause: Duration = .seconds(60)
        public var poll: Duration = .seconds(1)
        public var timeout: Duration = .seconds(15)
        public init() {}
    }

    let database: AppDatabase
    let box: SecretBox
    let options: Options
    let logger: Logger
    let now: @Sendable () -> Int64
    /// Whether a policy (by name) still lets conversions leave (ForwardingGate.policyAllows).
    let policyAllows: @Sendable (String) -> Bool
    /// Told each attempt's kind and outcome (metrics).
    let observe: @Sendable (_ kind: String, _ outcome: String) -> Void
    let breakers = Breakers()
    /// Outcomes of deliveries made but not recorded (the database refused the write): recorded
    /// first on the next pass, and those deliveries are not sent again meanwhile.
    let unrecorded = Mutex<[Int64: DeliveryOutcome]>([:])

    public init(database: AppDatabase, box: SecretBox, options: Options = .init(), logger: Logger,
                policyAllows: @escaping @Sendable (String) -> Bool,
                observe: @escaping @Sendable (_ kind: String, _ outcome: String) -> Void = { _, _ in },
                now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.database = database; self.box = box; self.options = options; self.logger = logger; self.now = now
        self.policyAllows = policyAllows; self.observe = observe
    }

    public func run() async throws {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(15))
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        await withGracefulShutdownHandler {
            // Each destination is worked by its own task: a slow or failing one holds up no other.
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    for (destination, deliveries) in claim() {
                        group.addTask {
                            await self.work(deliveries, client)
                            self.running.withLock { _ = $0.remove(destination) }
                        }
                    }
                    try? await Task.sleep(for: options.poll)
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {}
        try? await client.shutdown()
    }

    /// Destinations whose task is working.
    let running = Mutex<Set<Int64>>([])

    /// What is due, by destination, for destinations not being worked and not left alone by their
    /// breaker (one delivery for a breaker trying again); nothing while an outcome is unrecorded.
    func claim() -> [(Int64, [DueDelivery])] {
        // Outcomes not recorded yet go first; while any stays unrecorded, nothing is sent.
        for (id, outcome) in unrecorded.withLock({ $0 }) {
            do {
                try database.recordDelivery(id: id, outcome, at: now())
                _ = unrecorded.withLock { $0.removeValue(forKey: id) }
            } catch {
                logger.error("delivery outcome still not recorded", metadata: ["delivery": "\(id)", "error": "\(error)"])
                return []
            }
        }
        let due: [DueDelivery]
        do {
            due = try database.dueDeliveries(now: now(), perDestination: 4 * options.concurrency,
                                             excluding: breakers.open(now: now()).union(running.withLock { $0 }))
        } catch {
            logger.error("delivery queue unreadable", metadata: ["error": "\(error)"])
            return []
        }
        let claimed = Dictionary(grouping: due, by: \.destination.id).map { id, deliveries in
            (id, breakers.tryingAgain(id) ? Array(deliveries.prefix(1)) : deliveries)
        }
        running.withLock { $0.formUnion(claimed.map(\.0)) }
        return claimed
    }

    /// A destination's claimed deliveries, `concurrency` at a time; after a failure the rest wait
    /// for the next claim.
    func work(_ deliveries: [DueDelivery], _ client: HTTPClient) async {
        var rest = deliveries[...]
        while !rest.isEmpty && !Task.isCancelled {
            let batch = rest.prefix(options.concurrency)
            rest = rest.dropFirst(batch.count)
            let failures = await withTaskGroup(of: Bool.self) { inner in
                for d in batch { inner.addTask { await self.deliver(d, client) } }
                return await inner.reduce(0) { $0 + ($1 ? 0 : 1) }
            }
            if failures > 0 { break }
        }
    }

    /// Makes one attempt; false when the destination failed (counts towards its breaker: no
    /// answer, 5xx, 429, or a refused credential; not a payload it refuses).
    func deliver(_ d: DueDelivery, _ client: HTTPClient) async -> Bool {
        let outcome = await attempt(d, client)
        let ok: Bool
        switch outcome {
        case .retry: ok = false
        case .dead(let status, _): ok = status.map { (400..<500).contains($0) && ![401, 403, 404].contains($0) } ?? false
        case .sent, .notFound, .skipped: ok = true
        }
        if ok { breakers.success(d.destination.id) } else { breakers.failure(d.destination.id, now: now(), options: options) }
        let label = switch outcome {
        case .sent: "sent"
        case .notFound: "not_found"
        case .skipped: "skipped"
        case .retry: "retry"
        case .dead: "dead"
        }
        observe(d.destination.kind, label)
        do { try database.recordDelivery(id: d.id, outcome, at: now()) } catch {
            // Not sent again until recorded (at least once, not forever).
            unrecorded.withLock { $0[d.id] = outcome }
            logger.error("delivery outcome not recorded yet", metadata: ["delivery": "\(d.id)", "error": "\(error)"])
        }
        if case .dead(let status, let error) = outcome {
            logger.warning("delivery dead-lettered", metadata: ["delivery": "\(d.id)", "destination": "\(d.destination.id)",
                                                                "status": "\(status.map(String.init) ?? "-")", "error": "\(error)"])
        }
        return ok
    }

    func attempt(_ d: DueDelivery, _ client: HTTPClient) async -> DeliveryOutcome {
        guard let kind = DestinationKind(rawValue: d.destination.kind) else { return .dead(status: nil, error: "unknown destination kind \(d.destination.kind)") }
        // The gate again, now: a visit whose consent was withdrawn (or erased) since, or a site
        // moved to cnil-exempt, stops what is queued.
        guard d.visitForwardable else { return .skipped("consent for this visit no longer allows forwarding") }
        guard policyAllows(d.sitePolicy) else { return .skipped("the site's policy no longer allows forwarding") }
        guard var facts = d.facts else { return .skipped("its facts expired (the policy's retention) before it was sent") }
        facts.emailSHA256 = box.openText(facts.sealedEmailSHA256)
        facts.phoneSHA256 = box.openText(facts.sealedPhoneSHA256)
        let credential: String
        do {
            guard let sealed = d.destination.credential else { return .dead(status: nil, error: "no credential set") }
            credential = String(decoding: try box.open(sealed), as: UTF8.self)
        } catch {
            return .dead(status: nil, error: "\(error)")
        }
        let contact: [String: String]
        if let sealed = d.contact, let opened = try? box.open(sealed),
           let doc = try? JSONSerialization.jsonObject(with: Data(opened)) as? [String: String] {
            contact = doc
        } else {
            contact = [:]
        }
        let job = Job(facts: facts, contact: contact, eventID: d.eventID, settings: d.destination.settings, credential: credential,
                      siteDomain: d.siteDomain, now: now())
        let timeout = Int64(options.timeout.components.seconds)
        let clock = now
        let exchange = Exchange { request in
            var http = HTTPClientRequest(url: request.url)
            http.method = HTTPMethod(rawValue: request.method)
            for (name, value) in request.headers { http.headers.add(name: name, value: value) }
            http.headers.add(name: "User-Agent", value: "Candor")
            if let body = request.body { http.body = .bytes(ByteBuffer(bytes: body)) }
            let response = try await client.execute(http, timeout: .seconds(timeout))
            let text = try await response.body.collect(upTo: 1 << 20)
            return Answer(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After").flatMap { Self.retryAfter($0, now: clock()) },
                          body: Array(text.readableBytesView))
        }
        let started = now()
        let result: Delivered
        do {
            result = try await kind.deliver(job, exchange)
        } catch {
            return retry(d, status: nil, error: Self.redact("\(error)", credential), notBefore: nil)
        }
        let ms = now() - started
        switch result {
        case .done(let status): return .sent(status: status, durationMs: ms)
        case .notFound(let status): return .notFound(status: status, durationMs: ms)
        case .skipped(let reason): return .skipped(reason)
        case .refused(let answer):
            // A CRM's answer may quote the person: only its status is kept.
            let error = Self.redact(kind.wantsContact ? "HTTP \(answer.status)" : "HTTP \(answer.status) \(answer.excerpt)", credential)
            switch answer.status {
            case 408, 425, 429, 500...599: return retry(d, status: answer.status, error: error, notBefore: answer.retryAfter)
            // The request itself is refused (bad token, bad payload): retrying will not help; replay after fixing.
            default: return .dead(status: answer.status, error: error)
            }
        }
    }

    /// The next attempt's time: base·2^attempts with jitter in [½, 1], capped; no earlier than
    /// `Retry-After`. Dead after `maxAttempts`.
    func retry(_ d: DueDelivery, status: Int?, error: String, notBefore: Int64?) -> DeliveryOutcome {
        let attempts = d.attempts + 1
        guard attempts < options.maxAttempts else { return .dead(status: status, error: "after \(attempts) attempts: \(error)") }
        let base = Double(options.retryBase.components.seconds) * 1000 + Double(options.retryBase.components.attoseconds) / 1e15
        let cap = Double(options.retryCap.components.seconds) * 1000
        let delay = min(cap, base * pow(2, Double(attempts - 1))) * Double.random(in: 0.5...1)
        let at = max(now() + max(Int64(delay), 100), min(notBefore ?? 0, now() + 6 * 3_600_000))
        return .retry(at: at, status: status, error: error)
    }

    /// `text` with the credential, each part of a JSON credential, and their URL-encoded forms
    /// replaced.
    static func redact(_ text: String, _ credential: String) -> String {
        var secrets = [credential]
        if let doc = try? JSONSerialization.jsonObject(with: Data(credential.utf8)) as? [String: Any] {
            secrets += doc.values.compactMap { $0 as? String }
        }
        var out = text
        for s in secrets where s.count >= 4 {
            out = out.replacingOccurrences(of: s, with: "[credential]")
            if let encoded = s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) {
                out = out.replacingOccurrences(of: encoded, with: "[credential]")
            }
            out = out.replacingOccurrences(of: query(s), with: "[credential]")
        }
        return out
    }

    /// `Retry-After` as seconds or an HTTP date, in ms since 1970.
    static func retryAfter(_ value: String, now: Int64) -> Int64? {
        if let seconds = Int64(value.trimmingCharacters(in: .whitespaces)), seconds >= 0 { return now + min(seconds, 86_400) * 1000 }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: value).map { Int64($0.timeIntervalSince1970 * 1000) }
    }

}

/// Per-destination circuit breakers.
final class Breakers: Sendable {
    struct State { var failures = 0; var openUntil: Int64 = 0 }
    private let states = Mutex<[Int64: State]>([:])

    /// Destinations left alone now.
    func open(now: Int64) -> Set<Int64> {
        states.withLock { Set($0.filter { $0.value.openUntil > now }.keys) }
    }

    /// A destination whose pause is over and which gets one trial delivery (half open).
    func tryingAgain(_ destination: Int64) -> Bool {
        states.withLock { $0[destination].map { $0.openUntil > 0 } ?? false }
    }

    func success(_ destination: Int64) {
        states.withLock { $0[destination] = nil }
    }

    func failure(_ destination: Int64, now: Int64, options: DeliveryService.Options) {
        states.withLock { s in
            var state = s[destination] ?? State()
            state.failures += 1
            if state.failures >= options.breakerThreshold {
                state.openUntil = now + Int64(options.breakerPause.components.seconds) * 1000
                // Half-open: after the pause one more failure opens it again.
                state.failures = options.breakerThreshold - 1
            }
            s[destination] = state
        }
    }
}
