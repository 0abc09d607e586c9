import Foundation

/// Autonomous systems of data centres, hosting and VPN providers: traffic from them is not a
/// visitor's own connection (scripts, headless browsers, monitors; also people behind a VPN or a
/// corporate cloud proxy, which is why the layer is a policy's choice). Read from a list the
/// operator supplies, one autonomous system per line as `AS123` or `123`, `#` starting a comment:
/// the format of X4BNet's maintained `lists_vpn` (`input/datacenter/ASN.txt`, MIT licence).
/// Addresses are mapped to their autonomous system by the MaxMind ASN database (`--geoip-asn`).
public struct DatacenterNetworks: Sendable {
    public let numbers: Set<Int64>

    public init(list path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DatasetError.missing(dataset: "data-centre network", path: path, package: "a list of autonomous systems (README: bot layers)")
        }
        var numbers = Set<Int64>()
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.prefix { $0 != "#" }.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let digits = line.uppercased().hasPrefix("AS") ? line.dropFirst(2) : Substring(line)
            guard let n = Int64(digits), n > 0, n <= Int64(UInt32.max) else {
                throw DatasetError.malformed(path, "line \(index + 1) is not an autonomous system number: \(line.prefix(40))")
            }
            numbers.insert(n)
        }
        guard !numbers.isEmpty else { throw DatasetError.malformed(path, "no autonomous systems listed") }
        self.numbers = numbers
    }

    public func contains(_ asn: Int64?) -> Bool { asn.map(numbers.contains) ?? false }
}
