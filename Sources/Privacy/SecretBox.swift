import CSodium
public import Foundation
import Glibc
public import Store

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

    /// The key from `CANDOR_SECRET_KEY`, else `directory/secret.key` (created when missing), checked
    /// against the database: the key that sealed the stored credentials left a check value there
    /// (``claim(_:)``), and while such credentials are stored a different key (the variable set for
    /// `serve` but not for a CLI command, a database restored without its key) is refused rather
    /// than used.
    public static func load(directory: String, database: AppDatabase,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SecretBox {
        let box = try load(directory: directory, environment: environment)
        if let recorded = try database.storedSecret(named: checkName), !Sodium.equal(recorded, box.check),
           try database.sealedCredentialsExist() {
            throw Failure(description: "this secret key (CANDOR_SECRET_KEY or \(directory)/secret.key) is not the one that sealed this "
                + "database's destination credentials and second-factor keys: restore that key, or remove the destinations (candor destinations "
                + "remove) and add them again and reset the accounts' second factors (candor users reset-2fa)")
        }
        return box
    }

    static let checkName = "secret_key_check"
    var check: [UInt8] {
        key.withUnsafeBytes { k in Array("candor secret key check".utf8).withUnsafeBytes { Sodium.keyedHash(key: k, message: $0, outputLength: 16) } }
    }

    /// Records this key as the one sealing the database's credentials, before it seals one: kept
    /// when recorded already, replaced when nothing sealed under another key is left.
    public func claim(_ database: AppDatabase) throws {
        try database.recordSecret(named: Self.checkName, value: check)
        guard let recorded = try database.storedSecret(named: Self.checkName), Sodium.equal(recorded, check) else {
            throw Failure(description: "secrets sealed under another secret key are stored: restore that key, or remove those destinations and second factors first")
        }
    }

    static func load(directory: String, environment: [String: String]) throws -> SecretBox {
        if let hex = environment["CANDOR_SECRET_KEY"] {
            guard let bytes = Hex.decode(hex.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
                throw Failure(description: "CANDOR_SECRET_KEY must be 64 hex digits (32 bytes)")
            }
            return try SecretBox(key: bytes)
        }
        let path = directory + "/secret.key"
        if let existing = try read(path) { return try SecretBox(key: existing) }
        // Written whole under another name, then linked into place: a reader never sees a part
        // of it, and of two processes creating it at once the second reads the first's.
        let bytes = Sodium.randomBytes(32)
        let temporary = "\(path).\(getpid()).\(Hex.encode(Sodium.randomBytes(4)))"
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, 32) }
        let synced = fsync(fd) == 0
        close(fd)
        defer { unlink(temporary) }
        guard written == 32, synced else { throw Failure(description: "cannot write \(temporary)") }
        if link(temporary, path) != 0 {
            guard errno == EEXIST, let existing = try read(path) else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
            return try SecretBox(key: existing)
        }
        let dir = Glibc.open(directory, O_RDONLY)
        if dir >= 0 { fsync(dir); close(dir) }
        return try SecretBox(key: bytes)
    }

    /// The key file's bytes, nil when there is none; refused when others may read it.
    static func read(_ path: String) throws -> [UInt8]? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        guard st.st_mode & 0o077 == 0 else {
            throw Failure(description: "\(path) may be read by others (mode \(String(st.st_mode & 0o777, radix: 8))): chmod 600 it")
        }
        guard let data = FileManager.default.contents(atPath: path), data.count == 32 else {
            throw Failure(description: "\(path) must hold 32 bytes")
        }
        return Array(data)
    }

    /// `text` sealed, as base64 (for a JSON field).
    public func sealText(_ text: String) -> String { seal(Array(text.utf8)).base64EncodedString() }

    /// What ``sealText(_:)`` sealed; nil when absent or not sealed under this key.
    public func openText(_ sealed: String?) -> String? {
        sealed.flatMap { Data(base64Encoded: $0) }.flatMap { try? open($0) }.map { String(decoding: $0, as: UTF8.self) }
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
