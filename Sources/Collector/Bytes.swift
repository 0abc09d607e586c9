/// ASCII byte search for the hot path (user agents, hosts). `String.contains(String)` goes
/// through grapheme-aware searching, which dominated a CPU profile of the collector.
struct Bytes {
    let bytes: [UInt8]

    init(_ s: String, lowercased: Bool = false) {
        var b = Array(s.utf8)
        if lowercased {
            for i in b.indices where b[i] >= 65 && b[i] <= 90 { b[i] += 32 }
        }
        bytes = b
    }

    /// Byte offset of the first occurrence of `needle`, or nil.
    func firstIndex(of needle: String) -> Int? {
        var needle = needle
        return needle.withUTF8 { n -> Int? in
            guard n.count > 0, n.count <= bytes.count else { return nil }
            return bytes.withUnsafeBufferPointer { h -> Int? in
                let first = n[0]
                var i = 0
                let last = h.count - n.count
                while i <= last {
                    if h[i] == first {
                        var k = 1
                        while k < n.count && h[i + k] == n[k] { k += 1 }
                        if k == n.count { return i }
                    }
                    i += 1
                }
                return nil
            }
        }
    }

    func contains(_ needle: String) -> Bool { firstIndex(of: needle) != nil }

    func hasPrefix(_ prefix: String) -> Bool {
        let p = Array(prefix.utf8)
        return bytes.count >= p.count && bytes[0..<p.count].elementsEqual(p)
    }

    /// The run of ASCII digits right after the first `token` (at most `max`).
    func digits(after token: String, max: Int = 6) -> String? {
        guard let start = firstIndex(of: token) else { return nil }
        var i = start + token.utf8.count
        var out: [UInt8] = []
        while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57, out.count < max {
            out.append(bytes[i]); i += 1
        }
        return out.isEmpty ? nil : String(decoding: out, as: UTF8.self)
    }
}
