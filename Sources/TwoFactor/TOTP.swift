public import Foundation
import Crypto

/// Time-based one-time passwords (RFC 6238) over HOTP (RFC 4226) with HMAC-SHA-1, 30-second
/// steps and 6 digits: what every authenticator app reads from an `otpauth://` QR code.
public struct TOTP: Sendable {
    public let secret: [UInt8]
    public let digits: Int
    public let period: Int64

    public init(secret: [UInt8], digits: Int = 6, period: Int64 = 30) {
        self.secret = secret
        self.digits = digits
        self.period = period
    }

    /// The step (30-second period since the Unix epoch) an instant falls in.
    public func step(at date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / Double(period)).rounded(.down))
    }

    /// The code of a step (RFC 4226 section 5.3: dynamic truncation, modulo 10^digits, zero-padded).
    public func code(step: Int64) -> String {
        var counter = UInt64(bitPattern: step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Array($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let binary = (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let text = String(binary % modulus)
        return String(repeating: "0", count: digits - text.count) + text
    }

    public func code(at date: Date) -> String { code(step: step(at: date)) }

    /// The step whose code `code` is, among the step of `date` and its neighbours (one step of
    /// clock drift either way), later than `after` (a code is accepted once); nil otherwise. Every
    /// candidate is compared in full, in constant time.
    public func match(_ code: String, at date: Date, after: Int64) -> Int64? {
        let given = Array(code.utf8)
        guard given.count == digits, given.allSatisfy({ (48...57).contains($0) }) else { return nil }
        let now = step(at: date)
        var found: Int64?
        for s in (now - 1)...(now + 1) {
            var same: UInt8 = 0
            for (a, b) in zip(Array(self.code(step: s).utf8), given) { same |= a ^ b }
            if same == 0, s > after, found == nil { found = s }
        }
        return found
    }

    /// The `otpauth://` URI an authenticator app enrols from (Google's Key Uri Format).
    public func uri(issuer: String, account: String) -> String {
        func escape(_ s: String) -> String {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~@")
            return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        }
        return "otpauth://totp/\(escape(issuer)):\(escape(account))?secret=\(Base32.encode(secret))&issuer=\(escape(issuer))"
            + "&algorithm=SHA1&digits=\(digits)&period=\(period)"
    }
}

/// RFC 4648 base32 without padding (what authenticator apps take as a secret).
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var buffer: UInt32 = 0, bits = 0
        for b in bytes {
            buffer = (buffer << 8) | UInt32(b)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes base32, ignoring case, spaces, dashes and padding; nil for any other character.
    public static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0, bits = 0
        for c in text.uppercased().utf8 where c != 32 && c != 45 && c != 61 {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            buffer = (buffer << 5) | UInt32(v)
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> UInt32(bits - 8)) & 0xff))
                bits -= 8
            }
        }
        return out
    }
}
