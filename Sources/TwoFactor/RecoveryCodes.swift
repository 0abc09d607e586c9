import Privacy

/// One-time recovery codes: ten per enrolment, each ten characters of an alphabet without look-alikes
/// (50 bits), shown once as "xxxxx-xxxxx"; only their BLAKE2b hashes are stored.
public enum RecoveryCodes {
    public static let count = 10
    static let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789".utf8)

    /// New codes, as shown to the user.
    public static func generate() -> [String] {
        (0..<count).map { _ in
            var chars: [UInt8] = []
            while chars.count < 10 {
                // Rejection sampling: only bytes below the largest multiple of the alphabet's size.
                for b in Sodium.randomBytes(16) where Int(b) < 256 - 256 % alphabet.count && chars.count < 10 {
                    chars.append(alphabet[Int(b) % alphabet.count])
                }
            }
            return String(decoding: chars[0..<5], as: UTF8.self) + "-" + String(decoding: chars[5..<10], as: UTF8.self)
        }
    }

    /// The code as typed (any case, with or without the dash and spaces), in the stored form's
    /// spelling; nil when it cannot be a recovery code.
    public static func normalize(_ typed: String) -> String? {
        let chars = Array(typed.lowercased().utf8.filter { $0 != 45 && $0 != 32 })
        guard chars.count == 10, chars.allSatisfy(alphabet.contains) else { return nil }
        return String(decoding: chars, as: UTF8.self)
    }

    /// What is stored of a code (its normalized form hashed).
    public static func hash(_ normalized: String) -> [UInt8] { Sodium.hash(Array(normalized.utf8)) }
}
