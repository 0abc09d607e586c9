import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Privacy
import Server
import Store
import Testing

/// The application `candor serve` runs, built by the same `buildApplication` in this process:
/// served on a loopback port with its services (the writer among them), it stores an event it
/// acknowledged, and serves the pixel, the dashboard's sign-in and its health.
@Suite struct ServerApplicationTests {
    @Test func theServedApplicationIsTheOneTheTestsBuild() async throws {
        let dir = TempDir()
        let database = try AppDatabase(path: dir.file("candor.sqlite"))
        let site = Site(id: "builtsite", name: "Built", domains: ["example.com"], policy: "default", createdAt: Date())
        try database.addSite(site)
        try database.addUser(User(email: "owner@example.org", passwordHash: PasswordHasher.hash("owner-password-123"), role: .owner, createdAt: Date()))
        var c = ServerConfiguration(dataDirectory: dir.path, policiesDirectory: dir.path + "/no-policies",
                                    publicDirectory: URL(fileURLWithPath: templatesDirectory).deletingLastPathComponent().path)
        c.worldMap = "none"
        c.rateClient = 1000
        let app = try await buildApplication(c, logger: Logger(label: "test"))
        try await app.test(.live) { client in
            let event = try await client.execute(uri: "/api/event", method: .post,
                                                 headers: [.contentType: "text/plain", .userAgent: chromeUA],
                                                 body: ByteBuffer(string: #"{"site":"builtsite","url":"https://example.com/built"}"#))
            #expect(event.status == .accepted, "\(String(buffer: event.body))")
            // 202 comes after the commit: the event is in the database now.
            let paths = try sqlite3(dir.file("candor.sqlite"), "SELECT path FROM events").output
            #expect(paths.trimmingCharacters(in: .whitespacesAndNewlines) == "/built")
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            let login = try await client.execute(uri: "/login", method: .get)
            #expect(login.status == .ok && String(buffer: login.body).contains(#"name="password""#))
            let pixel = try await client.execute(uri: "/pixel.js", method: .get)
            #expect(pixel.status == .ok && pixel.headers[.contentType]?.contains("javascript") == true)
        }
    }
}
