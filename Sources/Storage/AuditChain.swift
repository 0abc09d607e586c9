/// One entry of the append-only audit log. `hash` seals this entry together with `prevHash`,
/// the hash of the entry before it (see Privacy.AuditLog for the chain rule).
public struct AuditEntry: Sendable, Equatable {
    public var seq: Int64
    /// Milliseconds since 1970 (UTC).
    public var timestamp: Int64
    /// Who or what acted: "cli", "scheduler", "api-key:ID", "self-service", "user:EMAIL".
    public var actor: String
    public var action: String
    public var siteID: String?
    /// Flat JSON object text; never contains identifiers of visitors.
    public var detail: String
    public var prevHash: [UInt8]
    public var hash: [UInt8]

    public init(seq: Int64, timestamp: Int64, actor: String, action: String, siteID: String?, detail: String,
                prevHash: [UInt8], hash: [UInt8]) {
        self.seq = seq; self.timestamp = timestamp; self.actor = actor; self.action = action
        self.siteID = siteID; self.detail = detail; self.prevHash = prevHash; self.hash = hash
    }
}

/// A write transaction that can append to the audit chain: the entry commits or rolls back with
/// the change it records.
public protocol AuditAppender {
    /// Appends an entry. `seal` receives it with `seq` and `prevHash` filled in (the head's hash,
    /// or 32 zero bytes for the first entry) and returns its hash. Appends are serialized by the
    /// store (one at a time across every process), so concurrent appends cannot fork the chain.
    @discardableResult
    func appendAudit(timestamp: Int64, actor: String, action: String, siteID: String?, detail: String,
                     seal: (AuditEntry) -> [UInt8]) throws -> AuditEntry
}

/// Where the hash-chained audit log is kept.
public protocol AuditChain: Sendable {
    /// Runs `body` in one write transaction that may append entries.
    func appendingAudit<T>(_ body: (any AuditAppender) throws -> T) throws -> T
    /// Entries with `seq > after`, in order, at most `limit`.
    func auditEntries(after: Int64, limit: Int) throws -> [AuditEntry]
    /// The newest entries first, of one action or of all.
    func recentAuditEntries(limit: Int, action: String?) throws -> [AuditEntry]
}
