import Consent
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4/IPv6 CIDR range, for `--trusted-proxy`.
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    let bytes: [UInt8]
    let prefix: Int

    /// Parses "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let addr = ipBytes(String(first)) else { return nil }
        let bits = addr.count * 8
        if parts.count == 2 {
            guard let p = Int(parts[1]), p >= 0, p <= bits else { return nil }
            prefix = p
        } else {
            prefix = bits
        }
        bytes = addr
    }

    public var description: String { "\(bytes.count == 4 ? bytes.map(String.init).joined(separator: ".") : "ipv6")/\(prefix)" }

    func contains(_ address: [UInt8]) -> Bool {
        var address = address
        // IPv4-mapped IPv6 (::ffff:a.b.c.d) matches IPv4 ranges.
        if bytes.count == 4, address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF {
            address = Array(address[12...])
        }
        guard address.count == bytes.count else { return false }
        var remaining = prefix
        for i in 0..<bytes.count where remaining > 0 {
            let take = min(8, remaining)
            let mask: UInt8 = take == 8 ? 0xFF : ~(0xFF >> UInt8(take))
            if address[i] & mask != bytes[i] & mask { return false }
            remaining -= take
        }
        return true
    }
}

/// inet_pton into 4 or 16 bytes.
func ipBytes(_ text: String) -> [UInt8]? {
    var v4 = in_addr()
    if text.withCString({ inet_pton(AF_INET, $0, &v4) }) == 1 {
        return withUnsafeBytes(of: &v4) { Array($0) }
    }
    var v6 = in6_addr()
    if text.withCString({ inet_pton(AF_INET6, $0, &v6) }) == 1 {
        return withUnsafeBytes(of: &v6) { Array($0) }
    }
    return nil
}

/// The address with its host part dropped, as the CNIL's exempted audience measurement asks
/// before any use: the last byte of an IPv4 address (also inside an IPv4-mapped IPv6 one) and
/// the last 80 bits of an IPv6 address (its first 48 bits, a site prefix, remain). Not an
/// address: nil, so nothing derived from it is computed.
public func truncatedAddress(_ text: String) -> String? {
    guard var bytes = ipBytes(text) else { return nil }
    let mapped = bytes.count == 16 && bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
    if bytes.count == 4 || mapped {
        bytes[bytes.count - 1] = 0
    } else {
        for i in 6..<16 { bytes[i] = 0 }
    }
    var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let ok = bytes.withUnsafeBytes { raw in
        inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, raw.baseAddress, &out, socklen_t(out.count)) != nil
    }
    return ok ? String(cString: out) : nil
}

/// The client address a site's policy lets any step use: truncated under cnil-exempt, else
/// whole. Every use (the visitor hash, the geo lookup, rate limits) goes through here.
func usableAddress(_ address: String?, under policy: Policy) -> String? {
    policy.mode == .cnilExempt ? address.flatMap(truncatedAddress) : address
}

/// Decides the client address of a request. `X-Forwarded-For` is believed only when the
/// connection comes from a trusted proxy; then the right-most address that is not itself a
/// trusted proxy is the client.
public struct ClientAddressResolver: Sendable {
    public let trustedProxies: [CIDR]

    public init(trustedProxies: [CIDR]) { self.trustedProxies = trustedProxies }

    func isTrusted(_ ip: String) -> Bool {
        guard !trustedProxies.isEmpty, let b = ipBytes(ip) else { return false }
        return trustedProxies.contains { $0.contains(b) }
    }

    /// What abuse limits count a client by: the address, or for IPv6 its /64 (a subscriber is
    /// given a whole /64 and could otherwise rotate through it).
    public static func limitKey(_ address: String) -> String {
        guard let bytes = ipBytes(address), bytes.count == 16 else { return address }
        // IPv4-mapped addresses stay whole.
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return address }
        return "v6/64:" + bytes.prefix(8).map { String($0, radix: 16) }.joined(separator: ":")
    }

    public func resolve(peer: String?, forwardedFor: String?) -> String? {
        guard let peer else { return nil }
        guard let forwardedFor, isTrusted(peer) else { return peer }
        var candidate = peer
        for hop in forwardedFor.split(separator: ",").reversed() {
            var ip = hop.trimmingCharacters(" ")
            // Strip a port from "1.2.3.4:5678" and brackets from "[::1]:5678".
            if ip.hasPrefix("["), let close = ip.firstIndex(of: "]") {
                ip = String(ip[ip.index(after: ip.startIndex)..<close])
            } else if ip.filter({ $0 == ":" }).count == 1, let colon = ip.firstIndex(of: ":") {
                ip = String(ip[..<colon])
            }
            guard ipBytes(ip) != nil else { break }
            candidate = ip
            if !isTrusted(ip) { break }
        }
        return candidate
    }
}

extension Substring {
    func trimmingCharacters(_ c: Character) -> String {
        var s = self
        while s.first == c { s.removeFirst() }
        while s.last == c { s.removeLast() }
        return String(s)
    }
}
