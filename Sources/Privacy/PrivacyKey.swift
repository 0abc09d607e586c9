/// The proof a browser presents for self-service export, erasure and consent records.
///
/// After analytics consent the pixel draws a random key and keeps it in the browser's own
/// storage only; it never goes into a URL or an event. The subject id is derived from it: the
/// first 16 bytes of SHA-256(key), in hex (what `crypto.subtle.digest` computes in the browser).
/// The subject id is the attribution token sites pass through checkouts and forms, so it may
/// leak; it proves nothing, and the key cannot be recovered from it.
public enum PrivacyKey {
    /// Shape of a key: 32-128 letters, digits, `-` and `_` (the pixel sends 64 hex digits).
    public static func isValid(_ key: String) -> Bool {
        (32...128).contains(key.utf8.count) && key.utf8.allSatisfy { b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 45 || b == 95
        }
    }

    /// The subject id a key stands for, or nil when the key is malformed.
    public static func subject(forKey key: String) -> String? {
        guard isValid(key) else { return nil }
        return Hex.encode(Array(Sodium.sha256(Array(key.utf8)).prefix(16)))
    }
}
