public import Store

/// Hashes subject identifiers (the pixel's random id, e-mail addresses, user ids) with a
/// long-lived server pepper, so the database never holds them in the clear but a deletion
/// or export request for the same identifier finds its rows.
public struct SubjectHasher: Sendable {
    private let pepper: SecretBytes

    public init(database: AppDatabase) throws {
        let bytes = try database.secret(named: "subject-pepper") { Sodium.randomBytes(32) }
        pepper = bytes.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    public init(pepper: [UInt8]) {
        self.pepper = pepper.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    public enum Kind: String, Sendable { case subject, email, userID = "user" }

    /// 64-bit keyed hash of `value`, domain-separated by kind. E-mails are trimmed and lowercased.
    public func hash(_ value: String, kind: Kind = .subject) -> Int64 {
        let normalized = kind == .email ? value.trimmingWhitespace().lowercased() : value
        var message = Array(kind.rawValue.utf8)
        message.append(0)
        message.append(contentsOf: normalized.utf8)
        return pepper.withBytes { key in message.withUnsafeBytes { Sodium.keyedHash64(key: key, message: $0) } }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
