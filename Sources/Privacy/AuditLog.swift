public import Foundation
import JSONOutput
public import Storage
public import Store

/// The tamper-evident audit log of privacy-relevant actions.
///
/// Chain rule: `hash = BLAKE2b-256("candor-audit-v1" ‖ prev_hash ‖ seq ‖ ts ‖ actor ‖ action ‖ site ‖ detail)`,
/// integers as 8 big-endian bytes, strings length-prefixed (4 bytes big-endian), the site with a
/// presence byte. The first entry's `prev_hash` is 32 zero bytes. Editing, inserting or deleting
/// any entry breaks the link after it; only rewriting every later entry hides an edit, so the head
/// hash that `verify()` prints is worth writing down elsewhere (a ticket, an e-mail).
public struct AuditLog: Sendable {
    /// Where the chain is kept (the SQLite file, or PostgreSQL).
    public let chain: any AuditChain
    let now: @Sendable () -> Date

    public init(chain: any AuditChain, now: @escaping @Sendable () -> Date = { Date() }) {
        self.chain = chain
        self.now = now
    }

    public init(database: AppDatabase, now: @escaping @Sendable () -> Date = { Date() }) {
        self.init(chain: database, now: now)
    }

    /// Appends an entry in a transaction of its own: for actions that change nothing else (an
    /// export). An action that changes data records itself with ``record(in:actor:action:site:detail:)``
    /// in the transaction of the change. `detail` values are strings or integers; never put a
    /// visitor identifier here.
    @discardableResult
    public func record(actor: String, action: String, site: String? = nil, detail: [String: AuditValue] = [:]) throws -> AuditEntry {
        try chain.appendingAudit { tx in try record(in: tx, actor: actor, action: action, site: site, detail: detail) }
    }

    /// Appends an entry inside `tx`, so it commits or rolls back with the change it records.
    @discardableResult
    public func record(in tx: any AuditAppender, actor: String, action: String, site: String? = nil,
                       detail: [String: AuditValue] = [:]) throws -> AuditEntry {
        try tx.appendAudit(timestamp: Int64(now().timeIntervalSince1970 * 1000), actor: actor, action: action,
                           siteID: site, detail: AuditValue.json(detail), seal: Self.seal)
    }

    public static func seal(_ e: AuditEntry) -> [UInt8] {
        var m = Array("candor-audit-v1".utf8)
        m += e.prevHash
        func int(_ v: Int64) { withUnsafeBytes(of: v.bigEndian) { m += $0 } }
        func str(_ s: String) { let u = Array(s.utf8); withUnsafeBytes(of: UInt32(u.count).bigEndian) { m += $0 }; m += u }
        int(e.seq); int(e.timestamp); str(e.actor); str(e.action)
        if let site = e.siteID { m.append(1); str(site) } else { m.append(0) }
        str(e.detail)
        return Sodium.hash(m)
    }

    /// Recomputes the chain from the first stored entry.
    public func verify() throws -> AuditVerification {
        var result = AuditVerification()
        var previous: AuditEntry?
        var after: Int64 = 0
        var anchors: [Int64: [UInt8]] = [:]
        for e in try chain.recentAuditEntries(limit: 10_000, action: "audit_pruned") {
            if let first = e.detailInt("first_seq"), let anchor = e.detailString("anchor").flatMap(Hex.decode) { anchors[first] = anchor }
        }
        while true {
            let page = try chain.auditEntries(after: after, limit: 2000)
            if page.isEmpty { break }
            for e in page {
                result.entries += 1
                if let p = previous {
                    if e.seq != p.seq + 1 { return result.broken(at: e.seq, "entries \(p.seq + 1)…\(e.seq - 1) are missing") }
                    if e.prevHash != p.hash { return result.broken(at: e.seq, "prev_hash does not match the hash of entry \(p.seq)") }
                } else if e.seq == 1 {
                    if e.prevHash != [UInt8](repeating: 0, count: 32) { return result.broken(at: 1, "the first entry's prev_hash is not zero") }
                } else {
                    // Earlier entries were pruned by retention, which records the hash the chain continues from.
                    guard anchors[e.seq] == e.prevHash else {
                        return result.broken(at: e.seq, "entries before \(e.seq) are missing and no audit_pruned entry vouches for them")
                    }
                }
                if Self.seal(e) != e.hash { return result.broken(at: e.seq, "contents do not match the entry's hash") }
                previous = e
                after = e.seq
            }
        }
        result.head = previous.map(\.hash)
        result.headSeq = previous?.seq
        return result
    }
}

/// What `AuditLog.verify()` found.
public struct AuditVerification: Sendable, Equatable {
    public var entries = 0
    public var headSeq: Int64?
    public var head: [UInt8]?
    /// The first entry whose link fails, or nil when the chain is intact.
    public var firstBroken: Int64?
    public var problem: String?

    public var isIntact: Bool { firstBroken == nil }

    func broken(at seq: Int64, _ why: String) -> AuditVerification {
        var r = self
        r.firstBroken = seq
        r.problem = why
        return r
    }
}

/// A value in an audit entry's detail.
public enum AuditValue: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case int(Int64)

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(_ i: Int) { self = .int(Int64(i)) }

    /// Compact JSON object text with sorted keys.
    public static func json(_ detail: [String: AuditValue]) -> String {
        JSON.object(detail.sorted { $0.key < $1.key }.map { key, value in
            switch value {
            case .string(let s): (key, .string(s))
            case .int(let i): (key, .int(i))
            }
        }).text
    }
}

extension AuditEntry {
    var detailObject: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(detail.utf8))) as? [String: Any] ?? [:]
    }
    func detailInt(_ key: String) -> Int64? { (detailObject[key] as? NSNumber)?.int64Value }
    func detailString(_ key: String) -> String? { detailObject[key] as? String }
}

/// Lower-case hexadecimal.
public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        func v(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        for i in stride(from: 0, to: u.count, by: 2) {
            guard let hi = v(u[i]), let lo = v(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }
}
