import CMaxMindDB
public import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where an address is, as precisely as the database knows. Any field may be unknown.
public struct GeoResult: Sendable, Equatable {
    public var country: String?
    public var region: String?
    public var city: String?
    public var asn: Int64?
    public var asnOrg: String?

    public init(country: String? = nil, region: String? = nil, city: String? = nil, asn: Int64? = nil, asnOrg: String? = nil) {
        self.country = country; self.region = region; self.city = city; self.asn = asn; self.asnOrg = asnOrg
    }

    public static let unknown = GeoResult()

    /// Precision levels, coarsest first.
    public enum Precision: Int, Sendable, Comparable {
        case none, country, region, city
        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    /// Keeps only what `precision` allows; ASN (a network, not a person) only if `keepASN`
    /// and precision is at least country.
    public func coarsened(to precision: Precision, keepASN: Bool) -> GeoResult {
        GeoResult(country: precision >= .country ? country : nil,
                  region: precision >= .region ? region : nil,
                  city: precision >= .city ? city : nil,
                  asn: keepASN && precision >= .country ? asn : nil,
                  asnOrg: keepASN && precision >= .country ? asnOrg : nil)
    }
}

/// Looks up an IP address. Implementations must be safe to call concurrently.
public protocol GeoLookup: Sendable {
    func lookup(_ ip: String) -> GeoResult
    /// Human-readable state for /health and the start-up message.
    var status: GeoStatus { get }
}

public struct GeoStatus: Sendable, Equatable {
    public var city: String
    public var asn: String
    /// Build time of the loaded city (or country) database.
    public var buildEpoch: Date?
}

/// Used when no database is configured: every address is "unknown".
public struct NoGeo: GeoLookup {
    public init() {}
    public func lookup(_ ip: String) -> GeoResult { .unknown }
    public var status: GeoStatus { GeoStatus(city: "unknown (no database configured)", asn: "unknown (no database configured)") }
}

/// libmaxminddb-backed lookup over a City (or Country) and an optional ASN database. Files are
/// memory-mapped; when a file's modification time changes it is reopened (checked at most every
/// `reloadCheckInterval`), so `geoipupdate` can replace it while Candor runs.
public final class MaxMindGeo: GeoLookup {
    private let cityPath: String?
    private let asnPath: String?
    private let reloadCheckInterval: TimeInterval
    private struct Loaded {
        var city: MMDBFile?
        var asn: MMDBFile?
        var checkedAt: Date
    }
    private let loaded: Mutex<Loaded>

    public init(cityPath: String?, asnPath: String?, reloadCheckInterval: TimeInterval = 60) throws {
        self.cityPath = cityPath
        self.asnPath = asnPath
        self.reloadCheckInterval = reloadCheckInterval
        let city = try cityPath.map { try MMDBFile(path: $0) }
        let asn = try asnPath.map { try MMDBFile(path: $0) }
        loaded = Mutex(Loaded(city: city, asn: asn, checkedAt: Date()))
    }

    public var status: GeoStatus {
        let l = loaded.withLock { $0 }
        return GeoStatus(city: l.city.map { "\($0.databaseType) (\($0.path))" } ?? "unknown (no database configured)",
                         asn: l.asn.map { "\($0.databaseType) (\($0.path))" } ?? "unknown (no database configured)",
                         buildEpoch: l.city?.buildEpoch)
    }

    public func lookup(_ ip: String) -> GeoResult {
        let (city, asn) = currentFiles()
        guard var address = SocketAddress(ip) else { return .unknown }
        var result = GeoResult()
        if let city, var entry = city.lookup(&address) {
            result.country = entry.string(.country)
            result.region = entry.string(.regionName) ?? entry.string(.regionCode)
            result.city = entry.string(.city)
        }
        if let asn, var entry = asn.lookup(&address) {
            result.asn = entry.uint(.asn)
            result.asnOrg = entry.string(.asnOrg)
        }
        return result
    }

    private func currentFiles() -> (MMDBFile?, MMDBFile?) {
        let now = Date()
        return loaded.withLock { l in
            if now.timeIntervalSince(l.checkedAt) >= reloadCheckInterval {
                l.checkedAt = now
                if let c = l.city, c.changedOnDisk(), let fresh = try? MMDBFile(path: c.path) { l.city = fresh }
                if let a = l.asn, a.changedOnDisk(), let fresh = try? MMDBFile(path: a.path) { l.asn = fresh }
            }
            return (l.city, l.asn)
        }
    }
}

public struct GeoError: Error, CustomStringConvertible {
    public let description: String
}

/// An open .mmdb file; closed when the last lookup using it is done.
final class MMDBFile: @unchecked Sendable {
    let path: String
    private var mmdb = MMDB_s()
    private let mtime: Date?
    let databaseType: String
    let buildEpoch: Date

    init(path: String) throws {
        self.path = path
        mtime = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        let status = MMDB_open(path, UInt32(MMDB_MODE_MMAP), &mmdb)
        guard status == MMDB_SUCCESS else {
            throw GeoError(description: "cannot open GeoIP database \(path): \(String(cString: MMDB_strerror(status)))")
        }
        databaseType = mmdb.metadata.database_type.map { String(cString: $0) } ?? "unknown"
        buildEpoch = Date(timeIntervalSince1970: Double(mmdb.metadata.build_epoch))
    }

    deinit { MMDB_close(&mmdb) }

    func changedOnDisk() -> Bool {
        let now = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        return now != nil && now != mtime
    }

    func lookup(_ address: inout SocketAddress) -> Entry? {
        var error: Int32 = 0
        let result = address.withSockaddr { MMDB_lookup_sockaddr(&mmdb, $0, &error) }
        guard error == MMDB_SUCCESS, result.found_entry else { return nil }
        return Entry(entry: result.entry, owner: self)
    }

    struct Entry {
        var entry: MMDB_entry_s
        let owner: MMDBFile

        mutating func value(_ path: LookupPath) -> MMDB_entry_data_s? {
            var data = MMDB_entry_data_s()
            let status = path.pointers.withUnsafeBufferPointer { MMDB_aget_value(&entry, &data, $0.baseAddress) }
            guard status == MMDB_SUCCESS, data.has_data else { return nil }
            return data
        }

        mutating func string(_ path: LookupPath) -> String? {
            guard let d = value(path), d.type == UInt32(MMDB_DATA_TYPE_UTF8_STRING), let p = d.utf8_string else { return nil }
            let bytes = UnsafeRawBufferPointer(start: p, count: Int(d.data_size))
            return String(decoding: bytes, as: UTF8.self)
        }

        mutating func uint(_ path: LookupPath) -> Int64? {
            guard let d = value(path) else { return nil }
            switch Int32(d.type) {
            case MMDB_DATA_TYPE_UINT16: return Int64(d.uint16)
            case MMDB_DATA_TYPE_UINT32: return Int64(d.uint32)
            case MMDB_DATA_TYPE_UINT64: return Int64(truncatingIfNeeded: d.uint64)
            default: return nil
            }
        }
    }
}

/// A numeric IPv4 or IPv6 address as a sockaddr, parsed with inet_pton (no resolver).
struct SocketAddress {
    private var storage = sockaddr_storage()

    init?(_ text: String) {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if text.withCString({ inet_pton(AF_INET, $0, &v4.sin_addr) }) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            withUnsafeBytes(of: &v4) { src in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
            }
        } else if text.withCString({ inet_pton(AF_INET6, $0, &v6.sin6_addr) }) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            withUnsafeBytes(of: &v6) { src in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
            }
        } else {
            return nil
        }
    }

    mutating func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>) -> R) -> R {
        withUnsafePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0) }
        }
    }
}

/// A NULL-terminated lookup path for MMDB_aget_value, built once.
final class LookupPath: @unchecked Sendable {
    let pointers: [UnsafePointer<CChar>?]
    init(_ keys: [String]) {
        pointers = keys.map { UnsafePointer(strdup($0)) } + [nil]
    }
    deinit { pointers.forEach { free(UnsafeMutablePointer(mutating: $0)) } }

    static let country = LookupPath(["country", "iso_code"])
    static let regionName = LookupPath(["subdivisions", "0", "names", "en"])
    static let regionCode = LookupPath(["subdivisions", "0", "iso_code"])
    static let city = LookupPath(["city", "names", "en"])
    static let asn = LookupPath(["autonomous_system_number"])
    static let asnOrg = LookupPath(["autonomous_system_organization"])
}
