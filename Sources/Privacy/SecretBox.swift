import CSodium
public import Foundation
import Glibc

/// Encrypts secrets kept in the database (destination tokens and API keys) with libsodium's
/// secretbox (XSalsa20-Poly1305) under a key that is not in the database: the environment's
/// `CANDOR_SECRET_KEY` (64 hex digits), else the data directory's `secret.key` (32 random bytes,
/// created 0600 on first use). A copy of the database alone does not reveal the tokens; a lost
/// key makes them unreadable (enter them again).
public struct SecretBox: Sendable {
    private let key: [UInt8]

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(key: [UInt8]) throws(Failure) {
        guard key.count == Int(crypto_secretbox_KEYBYTES) else { throw Failure(description: "a secret key is 32 bytes") }
        self.key = key
    }

    /// The key from `CANDOR_SECRET_KEY`, else `directory/secret.key` (created when missing).
    public static func load(directory: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SecretBox {
        if let hex = environment["CANDOR_SECRET_KEY"] {
            guard let bytes = Hex.decode(hex.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
                throw Failure(description: "CANDOR_SECRET_KEY must be 64 hex digits (32 bytes)")
            }
            return try SecretBox(key: bytes)
        }
        let path = directory + "/secret.key"
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count == 32 else { throw Failure(description: "\(path) must hold 32 bytes") }
            return try SecretBox(key: Array(data))
        }
        let bytes = Sodium.randomBytes(32)
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        if fd < 0 {
            // Another process created it first: read theirs.
            if errno == EEXIST, let data = FileManager.default.contents(atPath: path), data.count == 32 { return try SecretBox(key: Array(data)) }
            throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, 32) }
        guard written == 32, fsync(fd) == 0 else { throw Failure(description: "cannot write \(path)") }
        return try SecretBox(key: bytes)
    }

    /// nonce ‖ ciphertext.
    public func seal(_ plaintext: [UInt8]) -> Data {
        Sodium.initialize()
        let nonce = Sodium.randomBytes(Int(crypto_secretbox_NONCEBYTES))
        var out = [UInt8](repeating: 0, count: plaintext.count + Int(crypto_secretbox_MACBYTES))
        _ = crypto_secretbox_easy(&out, plaintext, UInt64(plaintext.count), nonce, key)
        return Data(nonce + out)
    }

    public func open(_ sealed: Data) throws(Failure) -> [UInt8] {
        Sodium.initialize()
        let n = Int(crypto_secretbox_NONCEBYTES), mac = Int(crypto_secretbox_MACBYTES)
        guard sealed.count >= n + mac else { throw Failure(description: "sealed secret too short") }
        let bytes = Array(sealed)
        let nonce = Array(bytes[..<n]), cipher = Array(bytes[n...])
        var out = [UInt8](repeating: 0, count: cipher.count - mac)
        guard crypto_secretbox_open_easy(&out, cipher, UInt64(cipher.count), nonce, key) == 0 else {
            throw Failure(description: "the secret does not open with this key (was secret.key or CANDOR_SECRET_KEY changed?)")
        }
        return out
    }
}
