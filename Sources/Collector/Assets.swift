import Foundation
public import Hummingbird
import NIOCore
import Privacy

/// The files client sites load (pixel.js, consent.js, consent.css), read once at start-up.
///
/// Each is served at a stable URL with a short cache (`/pixel.js`, for the install snippet) and
/// at a content-versioned URL with a year-long immutable cache (`/assets/pixel.<hash>.js`).
/// JavaScript is served with comment lines and indentation stripped.
public struct PublicAssets: Sendable {
    public struct Asset: Sendable {
        public let name: String
        public let body: [UInt8]
        public let contentType: String
        public let version: String
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
            found[name] = Asset(name: name, body: body, contentType: type, version: Hex.encode(Array(hash.prefix(5))))
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
            router.get(RouterPath(stringLiteral: "/" + asset.name)) { _, _ in Self.respond(asset, maxAge: 300, immutable: false) }
            router.get(RouterPath(stringLiteral: asset.versionedPath)) { _, _ in Self.respond(asset, maxAge: 31_536_000, immutable: true) }
        }
    }

    static func respond(_ asset: Asset, maxAge: Int, immutable: Bool) -> Response {
        Response(status: .ok, headers: [
            .contentType: asset.contentType,
            .cacheControl: "public, max-age=\(maxAge)\(immutable ? ", immutable" : "")",
            .accessControlAllowOrigin: "*",
            .init("X-Content-Type-Options")!: "nosniff",
        ], body: .init(byteBuffer: ByteBuffer(bytes: asset.body)))
    }
}
