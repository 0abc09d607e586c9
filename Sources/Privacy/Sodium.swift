import CSodium

/// The few libsodium primitives Candor uses.
public enum Sodium {
    /// Initializes libsodium; safe to call more than once.
    public static func initialize() {
        _ = sodiumInit
    }

    private static let sodiumInit: Int32 = {
        let rc = sodium_init()
        precondition(rc >= 0, "libsodium failed to initialize")
        return rc
    }()

    /// Cryptographically random bytes (randombytes_buf).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        initialize()
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) }
        return out
    }

    /// Keyed BLAKE2b (crypto_generichash) of `message`, `outputLength` bytes.
    public static func keyedHash(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer,
                                 outputLength: Int = 32) -> [UInt8] {
        initialize()
        var out = [UInt8](repeating: 0, count: outputLength)
        let rc = out.withUnsafeMutableBytes { o in
            crypto_generichash(o.baseAddress!.assumingMemoryBound(to: UInt8.self), outputLength,
                               message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                               key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count)
        }
        precondition(rc == 0, "crypto_generichash failed")
        return out
    }

    /// Unkeyed BLAKE2b (crypto_generichash) of `message`, `outputLength` bytes: content digests,
    /// the audit chain, stored hashes of high-entropy tokens.
    public static func hash(_ message: [UInt8], outputLength: Int = 32) -> [UInt8] {
        message.withUnsafeBytes { keyedHash(key: UnsafeRawBufferPointer(start: nil, count: 0), message: $0, outputLength: outputLength) }
    }

    /// Keyed BLAKE2b truncated to 8 bytes, read as a little-endian signed integer (fits SQLite INTEGER).
    public static func keyedHash64(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) -> Int64 {
        initialize()
        var out: UInt64 = 0
        let rc = withUnsafeMutableBytes(of: &out) { o in
            crypto_generichash(o.baseAddress!.assumingMemoryBound(to: UInt8.self), 8,
                               message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                               key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count)
        }
        precondition(rc == 0, "crypto_generichash failed")
        return Int64(bitPattern: UInt64(littleEndian: out))
    }

    /// HMAC-SHA-256 (crypto_auth_hmacsha256 with a key of any length).
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        initialize()
        var state = crypto_auth_hmacsha256_state()
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        _ = crypto_auth_hmacsha256_init(&state, key, key.count)
        _ = crypto_auth_hmacsha256_update(&state, message, UInt64(message.count))
        _ = crypto_auth_hmacsha256_final(&state, &out)
        return out
    }

    /// SHA-256 (crypto_hash_sha256): what browsers compute with `crypto.subtle.digest`.
    public static func sha256(_ message: [UInt8]) -> [UInt8] {
        initialize()
        var out = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        _ = crypto_hash_sha256(&out, message, UInt64(message.count))
        return out
    }

    /// Overwrites memory with zeros in a way the compiler may not elide.
    public static func memzero(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress else { return }
        sodium_memzero(base, buffer.count)
    }

    /// Constant-time comparison.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in
            sodium_memcmp(pa.baseAddress!, pb.baseAddress!, a.count) == 0
        } }
    }
}

/// A fixed-size secret held in memory that libsodium locks and zeroes when freed.
public final class SecretBytes: @unchecked Sendable {
    private let base: UnsafeMutableRawPointer
    public let count: Int

    public init(copying bytes: UnsafeRawBufferPointer) {
        Sodium.initialize()
        count = bytes.count
        guard let p = sodium_malloc(max(1, bytes.count)) else { fatalError("sodium_malloc failed") }
        base = p
        if let src = bytes.baseAddress { base.copyMemory(from: src, byteCount: bytes.count) }
    }

    /// Fresh random secret bytes, never leaving sodium-managed memory.
    public init(random count: Int) {
        Sodium.initialize()
        self.count = count
        guard let p = sodium_malloc(max(1, count)) else { fatalError("sodium_malloc failed") }
        base = p
        randombytes_buf(base, count)
    }

    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// sodium_free zeroes the memory before releasing it.
    deinit { sodium_free(base) }
}
