import CSodium

/// argon2id password hashing (libsodium crypto_pwhash_str, interactive limits).
public enum PasswordHasher {
    public static func hash(_ password: String) -> String {
        Sodium.initialize()
        var out = [CChar](repeating: 0, count: Int(crypto_pwhash_STRBYTES))
        let length = UInt64(password.utf8.count)
        let rc = password.withCString { p in
            crypto_pwhash_str(&out, p, length,
                              UInt64(crypto_pwhash_OPSLIMIT_INTERACTIVE), Int(crypto_pwhash_MEMLIMIT_INTERACTIVE))
        }
        precondition(rc == 0, "crypto_pwhash_str failed (out of memory)")
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func verify(_ password: String, hash: String) -> Bool {
        Sodium.initialize()
        let length = UInt64(password.utf8.count)
        return hash.withCString { h in
            password.withCString { p in crypto_pwhash_str_verify(h, p, length) == 0 }
        }
    }

    /// A random password of `length` characters from an unambiguous alphabet (uniform: rejection sampling).
    public static func randomPassword(length: Int = 20) -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        let limit = 256 - 256 % alphabet.count
        var out = ""
        while out.count < length {
            for byte in Sodium.randomBytes(length) where out.count < length && Int(byte) < limit {
                out.append(alphabet[Int(byte) % alphabet.count])
            }
        }
        return out
    }
}
