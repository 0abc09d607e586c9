import Foundation
public import Hummingbird
import NIOCore
import Privacy

/// The files client sites load (pixel.js, consent.js, consent.css), read once at start-up.
///
/// Each is served at a stable URL with a short cache (`/pixel.js`, for the install snippet) and
/// at a content-versioned URL with a year-long immutable cache (`/assets/pixel.<hash>.js`).
/// JavaScript is served with comment lines and indentation stripped. Every asset is compressed
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

    public init(directory: String) throws {
        var found: [String: Asset] = [:]
        for (name, type) in [("pixel.js", "text/javascript; charset=utf-8"), ("consent.js", "text/javascript; charset=utf-8"),
                             ("consent.css", "text/css; charset=utf-8"), ("demo.css", "text/css; charset=utf-8"),
                             ("demo.js", "text/javascript; charset=utf-8"), ("admin.css", "text/css; charset=utf-8"),
                             ("admin.js", "text/javascript; charset=utf-8")] {
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            var text = String(decoding: data, as: UTF8.self)
            if name.hasSuffix(".js") { text = Self.strip(text) }
            let body = Array(text.utf8)
            // Unkeyed BLAKE2b of the served bytes names the version.
            let hash = Sodium.hash(body, outputLength: 16)
            let br = Compression.brotli(body).flatMap { $0.count < body.count ? $0 : nil }
            let gz = Compression.gzip(body).flatMap { $0.count < body.count ? $0 : nil }
            found[name] = Asset(name: name, body: body, contentType: type, version: Hex.encode(Array(hash.prefix(5))), brotli: br, gzip: gz)
        }
        guard found["pixel.js"] != nil else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: directory + "/pixel.js"])
        }
        assets = found
    }

    /// Drops whole-line `//` comments and leading indentation; keeps `/*! */` licence headers.
    static func strip(_ js: String) -> String {
        js.split(separator: "\n", omittingEmptySubsequences: true).compactMap { line -> Substring? in
            let t = line.drop(while: { $0 == " " || $0 == "\t" })
            return t.hasPrefix("// ") || t == "//" ? nil : t
        }.joined(separator: "\n") + "\n"
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
