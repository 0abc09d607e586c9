/// Minimization helpers: what is left of visitor-supplied strings before they are stored.
public enum Minimize {
    public static let maxPathLength = 512

    /// Redacts identifying segments of a URL path (no query, no fragment):
    /// e-mail addresses → `:email`, runs of 6+ digits → `:num`, token-like segments
    /// (UUIDs, long alphanumeric runs with digits, long hex) → `:token`.
    public static func path(_ raw: Substring) -> String {
        if raw.isEmpty { return "/" }
        var out = ""
        out.reserveCapacity(raw.utf8.count)
        var first = true
        for segment in raw.split(separator: "/", omittingEmptySubsequences: false) {
            if !first { out.append("/") }
            first = false
            out.append(redactSegment(segment))
        }
        if !out.hasPrefix("/") { out = "/" + out }
        if out.utf8.count > maxPathLength { out = String(out.utf8.prefix(maxPathLength)) ?? String(out.prefix(maxPathLength)) }
        return out
    }

    static func redactSegment(_ segment: Substring) -> String {
        if segment.isEmpty { return "" }
        let decoded = percentDecoded(segment)
        if looksLikeEmail(decoded) { return ":email" }
        if isUUID(decoded) || isTokenLike(decoded) { return ":token" }
        return redactDigitRuns(String(segment), minimum: 6, replacement: ":num")
    }

    /// Redacts a free-text value (custom event property): e-mails → `[email]`, 9+ digit runs → `[num]`.
    public static func value(_ raw: String) -> String {
        var words: [String] = []
        for word in raw.split(separator: " ", omittingEmptySubsequences: false) {
            words.append(looksLikeEmail(Substring(word)) ? "[email]" : redactDigitRuns(String(word), minimum: 9, replacement: "[num]"))
        }
        return words.joined(separator: " ")
    }

    public static func looksLikeEmail(_ s: Substring) -> Bool {
        guard let at = s.firstIndex(of: "@") else { return false }
        let local = s[..<at], domain = s[s.index(after: at)...]
        return !local.isEmpty && domain.contains(".") && !domain.hasSuffix(".") && !domain.contains("@")
    }

    static func isUUID(_ s: Substring) -> Bool {
        let u = Array(s.utf8)
        guard u.count == 36 else { return false }
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

    static func redactDigitRuns(_ s: String, minimum: Int, replacement: String) -> String {
        var out = ""
        var digits = ""
        func flush() {
            out += digits.count >= minimum ? replacement : digits
            digits = ""
        }
        for ch in s {
            if ch.isASCII && ch.isNumber { digits.append(ch) } else { flush(); out.append(ch) }
        }
        flush()
        return out
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
                bytes.append(h << 4 | l)
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
