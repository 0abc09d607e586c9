@testable import Collector
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

extension LiveServerTests {
    /// Issue 16, delivery, against the running binary: every client asset is served compressed in
    /// the encoding the request accepts (brotli, else gzip, else as it is), the compressed bytes
    /// decode to exactly the plain ones, each encoding has its own strong ETag and a matching
    /// If-None-Match gets a 304 without a body.
    @Suite struct AssetDeliveryTests {
        @Test func assetsAreServedCompressedWithValidators() async throws {
            let dir = TempDir()
            let server = ServerProcess(data: dir.path, logPath: dir.file("server.log"))
            try await server.start()
            defer { server.terminate() }
            let assets = try PublicAssets(directory: "Public")
            try await TestClient.withClient(host: "127.0.0.1", port: server.port) { client in
                func get(_ path: String, _ headers: HTTPFields) async throws -> (HTTPResponse.Status, HTTPFields, [UInt8]) {
                    let r = try await client.execute(.init(path, method: .get, headers: headers))
                    return (r.status, r.headers, r.body.map { Array(buffer: $0) } ?? [])
                }
                for name in ["pixel.js", "consent.js", "consent.css", "admin.css"] {
                    let asset = try #require(assets.assets[name])
                    for path in ["/" + name, asset.versionedPath] {
                        let plain = try await get(path, [:])
                        #expect(plain.0 == .ok && plain.1[.contentEncoding] == nil && plain.1[.vary] == "Accept-Encoding", "\(path)")
                        let br = try await get(path, [.acceptEncoding: "gzip, deflate, br, zstd"])
                        #expect(br.1[.contentEncoding] == "br" && Compression.unbrotli(br.2) == plain.2, "\(path)")
                        let gz = try await get(path, [.acceptEncoding: "br;q=0, gzip;q=0.8"])
                        #expect(gz.1[.contentEncoding] == "gzip" && Compression.gunzip(gz.2) == plain.2, "\(path)")
                        #expect(br.2.count < gz.2.count && gz.2.count < plain.2.count, "\(path): \(br.2.count) < \(gz.2.count) < \(plain.2.count)")
                        let tags = [plain.1[.eTag], br.1[.eTag], gz.1[.eTag]].compactMap { $0 }
                        #expect(Set(tags).count == 3, "\(path): \(tags)")
                        let cached = try await get(path, [.acceptEncoding: "br", .ifNoneMatch: br.1[.eTag] ?? "-"])
                        #expect(cached.0 == .notModified && cached.2.isEmpty && cached.1[.eTag] == br.1[.eTag], "\(path)")
                        // Another encoding's tag does not validate these bytes.
                        #expect(try await get(path, [.acceptEncoding: "br", .ifNoneMatch: gz.1[.eTag] ?? "-"]).0 == .ok, "\(path)")
                        if path == asset.versionedPath { #expect(br.1[.cacheControl]?.contains("immutable") == true) }
                        if name == "pixel.js" && path == "/pixel.js" { print("pixel.js on the wire: \(br.2.count) bytes brotli, \(gz.2.count) gzip, \(plain.2.count) plain") }
                    }
                }
            }
        }

        @Test func acceptEncodingIsReadWithItsQValues() {
            #expect(PublicAssets.accepted("gzip, deflate, br") == (true, true))
            #expect(PublicAssets.accepted("br;q=0, gzip") == (false, true))
            #expect(PublicAssets.accepted("*;q=0") == (false, false))
            #expect(PublicAssets.accepted("identity") == (false, false))
            #expect(PublicAssets.accepted("*") == (true, true))
            #expect(PublicAssets.accepted(nil) == (false, false))
            #expect(PublicAssets.accepted("GZIP;Q=0.5") == (false, true))
        }
    }
}
