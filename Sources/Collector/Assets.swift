import Foundation
public import Hummingbird
import NIOCore
import Privacy

/// The files client sites load (pixel.js, pixel-lite.js, consent.js, consent.css) and the
/// dashboard's, read once at start-up from what `make assets` built (esbuild, minified) into
/// `Public/build/`; a missing or stale build is refused with the command that makes it.
///
/// Each is served at a stable URL with a short cache (`/pixel.js`, for the install snippet) and
/// at a content-versioned URL with a year-long immutable cache (`/assets/pixel.<hash>.js`).
/// Every asset is compressed
/// once at start, with brotli and gzip, and served in the encoding the request accepts
/// (brotli first), with `Vary: Accept-Encoding`, a strong ETag per encoding and 304 for a
/// matching `If-None-Match`.
public struct PublicAssets: Sendable {
    public struct Asset: Sendable {
        public let name: String
        public let body: [UInt8]
        public let contentType: String
        public let version: String
        /// The body compressed with brotli and with gzip (nil when compressing does not pay).
        public let brotli: [UInt8]?
        public let gzip: [UInt8]?
        public var versionedPath: String {
            let dot = name.lastIndex(of: ".")!
            return "/assets/\(name[..<dot]).\(version)\(name[dot...])"
        }
    }

    public let assets: [String: Asset]

    public struct NotBuilt: Error, CustomStringConvertible {
        public let description: String
    }

    /// The built file for a source in `directory`: `build/NAME`, which must not be older than
    /// the source (an edit not yet built would otherwise be served as if it were).
    static func built(_ name: String, in directory: String) throws -> Data? {
        let fm = FileManager.default
        // pixel-lite.js is built from pixel.js.
        let sourceName = directory + "/" + (name == "pixel-lite.js" ? "pixel.js" : name), output = directory + "/build/" + name
        guard fm.fileExists(atPath: sourceName) else { return nil }
        func modified(_ path: String) -> Date? { (try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date }
        guard let data = fm.contents(atPath: output), let builtAt = modified(output) else {
            throw NotBuilt(description: "\(output) is missing: run `make assets` (esbuild) to build the client assets")
        }
        if let changed = modified(sourceName), changed > builtAt {
            throw NotBuilt(description: "\(output) is older than \(sourceName): run `make assets` to rebuild it")
        }
        return data
    }

    /// `extra`: assets made at start-up rather than by `make assets` (the world map's SVG).
    public init(directory: String, extra: [(name: String, contentType: String, body: [UInt8])] = []) throws {
        var found: [String: Asset] = [:]
        for (name, type) in [("pixel.js", "text/javascript; charset=utf-8"), ("pixel-lite.js", "text/javascript; charset=utf-8"),
                             ("consent.js", "text/javascript; charset=utf-8"),
                             ("consent.css", "text/css; charset=utf-8"), ("demo.css", "text/css; charset=utf-8"),
                             ("demo.js", "text/javascript; charset=utf-8"), ("admin.css", "text/css; charset=utf-8"),
                             ("admin.js", "text/javascript; charset=utf-8")] {
            guard let data = try Self.built(name, in: directory) else { continue }
            found[name] = Self.asset(name, type, Array(data))
        }
        for e in extra { found[e.name] = Self.asset(e.name, e.contentType, e.body) }
        guard found["pixel.js"] != nil else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: directory + "/pixel.js"])
        }
        assets = found
    }

    static func asset(_ name: String, _ type: String, _ body: [UInt8]) -> Asset {
        // Unkeyed BLAKE2b of the served bytes names the version.
        let hash = Sodium.hash(body, outputLength: 16)
        let br = Compression.brotli(body).flatMap { $0.count < body.count ? $0 : nil }
        let gz = Compression.gzip(body).flatMap { $0.count < body.count ? $0 : nil }
        return Asset(name: name, body: body, contentType: type, version: Hex.encode(Array(hash.prefix(5))), brotli: br, gzip: gz)
    }

    public func add<Context: RequestContext>(to router: Router<Context>) {
        for asset in assets.values {
            router.get(RouterPath(stringLiteral: "/" + asset.name)) { request, _ in
                Self.respond(asset, to: request.headers, maxAge: 300, immutable: false)
            }
            router.get(RouterPath(stringLiteral: asset.versionedPath)) { request, _ in
                Self.respond(asset, to: request.headers, maxAge: 31_536_000, immutable: true)
            }
        }
    }

    /// The encodings a request accepts (`Accept-Encoding`, RFC 9110 §12.5.3): names with a
    /// q-value above 0; `*` stands for any not named.
    static func accepted(_ header: String?) -> (brotli: Bool, gzip: Bool) {
        var q: [String: Double] = [:]
        for part in (header ?? "").lowercased().split(separator: ",") {
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let name = fields.first, !name.isEmpty else { continue }
            let value = fields.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            q[name] = value
        }
        func ok(_ name: String) -> Bool { (q[name] ?? q["*"] ?? 0) > 0 }
        return (ok("br"), ok("gzip") || (q["gzip"] == nil && ok("x-gzip")))
    }

    static func respond(_ asset: Asset, to request: HTTPFields, maxAge: Int, immutable: Bool) -> Response {
        let accepts = accepted(request[.acceptEncoding])
        let (body, encoding): ([UInt8], String?) = if accepts.brotli, let br = asset.brotli { (br, "br") }
            else if accepts.gzip, let gz = asset.gzip { (gz, "gzip") } else { (asset.body, nil) }
        // Strong validators name the bytes: one per version and encoding.
        let etag = "\"\(asset.version)\(encoding.map { "-" + $0 } ?? "")\""
        var headers: HTTPFields = [
            .contentType: asset.contentType,
            .cacheControl: "public, max-age=\(maxAge)\(immutable ? ", immutable" : "")",
            .accessControlAllowOrigin: "*",
            .init("X-Content-Type-Options")!: "nosniff",
            .vary: "Accept-Encoding",
            .eTag: etag,
        ]
        if let match = request[.ifNoneMatch],
           match.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
               .contains(where: { $0 == "*" || $0 == etag || $0 == "W/" + etag }) {
            return Response(status: .notModified, headers: headers)
        }
        if let encoding { headers[.contentEncoding] = encoding }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
