import Foundation

/// Minimization helpers: what is left of visitor-supplied strings before they are stored.
public enum Minimize {
    public static let maxPathLength = 512

    /// Redacts identifying segments of a URL path (no query, no fragment):
    /// e-mail addresses → `:email`, runs of 6+ digits → `:num`, token-like segments
    /// (UUIDs, long alphanumeric runs with digits, long hex) → `:token`.
    public static func path(_ raw: Substring) -> String {
        if raw.isEmpty { return "/" }
        var out = ""
        out.reserveCapacity(raw.utf8.count + 1)
        if raw.utf8.first != UInt8(ascii: "/") { out.append("/") }
        var first = true
        // Split on "/" bytes: indices of ASCII bytes are valid string indices.
        for segment in raw.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if !first { out.append("/") }
            first = false
            out.append(contentsOf: redactSegment(Substring(segment)))
        }
        if out.utf8.count > maxPathLength { out = String(out.utf8.prefix(maxPathLength)) ?? String(out.prefix(maxPathLength)) }
        return out
    }

    static func redactSegment(_ segment: Substring) -> Substring {
        if segment.isEmpty { return "" }
        let decoded = percentDecoded(segment)
        if looksLikeEmail(decoded) { return ":email" }
        if isUUID(decoded) || isTokenLike(decoded) { return ":token" }
        return redactDigitRuns(segment, minimum: 6, replacement: ":num")
    }

    /// Redacts a free-text value (custom event property): e-mails → `[email]`, 9+ digit runs → `[num]`.
    public static func value(_ raw: String) -> String {
        // Without an "@" no word is an e-mail address, and digit runs never span a space.
        guard raw.utf8.contains(UInt8(ascii: "@")) else { return String(redactDigitRuns(Substring(raw), minimum: 9, replacement: "[num]")) }
        var words: [Substring] = []
        for word in raw.utf8.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false) {
            let word = Substring(word)
            words.append(looksLikeEmail(word) ? "[email]" : redactDigitRuns(word, minimum: 9, replacement: "[num]"))
        }
        return words.joined(separator: " ")
    }

    /// A campaign field, click id or name as stored: nil when missing or empty, else its first
    /// 200 characters, redacted like ``value(_:)``.
    public static func bounded(_ s: String?) -> String? {
        guard let s, !s.isEmpty else { return nil }
        return value(s.utf8.count <= 200 ? s : String(s.prefix(200)))
    }

    /// Lowercase hex SHA-256 of a phone number in international form (`+` and country code; spaces,
    /// dots, dashes and brackets ignored) as its digits only, the way Meta's `ph` wants it; nil for
    /// a number without a `+` (its country cannot be known).
    public static func phoneSHA256(_ number: String) -> String? {
        let trimmed = number.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("+") || trimmed.hasPrefix("00") else { return nil }
        var digits = ""
        for c in trimmed.dropFirst(trimmed.hasPrefix("+") ? 1 : 2) {
            if c.isASCII && c.isNumber { digits.append(c) } else if !" .-()/".contains(c) { return nil }
        }
        guard (8...15).contains(digits.count), !digits.hasPrefix("0") else { return nil }
        return Hex.encode(Sodium.sha256(Array(digits.utf8)))
    }

    /// Lowercase hex SHA-256 of an e-mail address trimmed and lowercased: the match key ad
    /// platforms accept (Meta's em, LinkedIn's SHA256_EMAIL).
    public static func emailSHA256(_ address: String) -> String {
        let normalized = address.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        return Hex.encode(Sodium.sha256(Array(normalized.utf8)))
    }

    public static func looksLikeEmail(_ s: Substring) -> Bool {
        let u = s.utf8
        guard let at = u.firstIndex(of: UInt8(ascii: "@")) else { return false }
        let domain = u[u.index(after: at)...]
        return at != u.startIndex && domain.contains(UInt8(ascii: ".")) && domain.last != UInt8(ascii: ".")
            && !domain.contains(UInt8(ascii: "@"))
    }

    static func isUUID(_ s: Substring) -> Bool {
        guard s.utf8.count == 36 else { return false }
        let u = Array(s.utf8)
        for (i, c) in u.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 { if c != UInt8(ascii: "-") { return false } }
            else if !isHex(c) { return false }
        }
        return true
    }

    /// An unbroken alphanumeric run of 16+ characters that contains a digit, or of 24+
    /// characters mixing upper and lower case (base64-ish keys), or 16+ hex digits.
    static func isTokenLike(_ s: Substring) -> Bool {
        var run = 0, digits = 0, upper = 0, lower = 0, hexOnly = true
        func check() -> Bool {
            if run >= 16 && (digits > 0 || hexOnly) && !(hexOnly && digits == 0 && run < 20) { return true }
            if run >= 24 && upper > 0 && lower > 0 { return true }
            return false
        }
        for c in s.utf8 {
            let isDigit = c >= 48 && c <= 57
            let isUpper = c >= 65 && c <= 90
            let isLower = c >= 97 && c <= 122
            if isDigit || isUpper || isLower {
                run += 1
                if isDigit { digits += 1 }
                if isUpper { upper += 1 }
                if isLower { lower += 1 }
                if !isHex(c) { hexOnly = false }
            } else {
                if check() { return true }
                run = 0; digits = 0; upper = 0; lower = 0; hexOnly = true
            }
        }
        return check()
    }

    /// Replaces every run of at least `minimum` ASCII digits; returns `s` itself when there is none.
    static func redactDigitRuns(_ s: Substring, minimum: Int, replacement: String) -> Substring {
        var run = 0
        var found = false
        for c in s.utf8 {
            if c >= 48 && c <= 57 {
                run += 1
                if run >= minimum { found = true; break }
            } else {
                run = 0
            }
        }
        guard found else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        var digits = 0
        func flush() {
            if digits >= minimum { out.removeLast(digits); out.append(contentsOf: replacement.utf8) }
            digits = 0
        }
        for c in s.utf8 {
            if c >= 48 && c <= 57 { digits += 1; out.append(c) } else { flush(); out.append(c) }
        }
        flush()
        return Substring(String(decoding: out, as: UTF8.self))
    }

    static func isHex(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
    }

    /// Percent-decodes; invalid escapes are kept as they are.
    public static func percentDecoded(_ s: Substring) -> Substring {
        guard s.utf8.contains(UInt8(ascii: "%")) || s.utf8.contains(UInt8(ascii: "+")) else { return s }
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%"), it.count >= 2, let h = hexValue(it[it.startIndex]), let l = hexValue(it[it.startIndex + 1]) {
                // %00 is dropped: a NUL ends C strings, and PostgreSQL's text cannot hold one.
                if h << 4 | l != 0 { bytes.append(h << 4 | l) }
                it = it.dropFirst(2)
            } else if c == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(c)
            }
        }
        return Substring(String(decoding: bytes, as: UTF8.self))
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 65...70: c - 55
        case 97...102: c - 87
        default: nil
        }
    }
}
