import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
@testable import Store
import Testing

/// Issue 15: archiving and deleting a site from the dashboard, proven against `candor serve`.
@Suite struct SiteRemovalTests {
    /// A site with events is archived in the dashboard: the collector refuses its events (within
    /// its 30 s refresh). Deleting is refused too early and with the wrong name; then, while
    /// another site takes a steady load, it removes every row of the site from every table but the
    /// audit log, and no byte of its pages' paths is left in the database file, its WAL or shm;
    /// every event acknowledged for the other site is stored; the audit log tells each step.
    @Test func archivingStopsCollectionAndDeletingLeavesNothingOfTheSite() async throws {
        let install = try await LiveInstall(serve: ["--purge-every", "0", "--requests-every", "0.5"])
        let doomed = try install.cli(["sites", "add", "--name", "Doomed shop", "--domain", "doomed.example"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let marker = "zq-doomed-marker-7431"
        func post(_ i: Int) async throws -> HTTPResponse.Status {
            try await install.request(.post, "/api/event", headers: [
                .contentType: "text/plain", .userAgent: chromeUA, .init("X-Forwarded-For")!: "198.51.100.\(i % 250)",
            ], body: #"{"site":"\#(doomed)","url":"https://doomed.example/\#(marker)/\#(i)","id":"doomed-\#(i)"}"#).status
        }
        // The collector learns of the new site within its reload interval for unknown ids.
        #expect(try await eventually(10) { try await post(0) == .accepted })
        for i in 1..<60 { #expect(try await post(i) == .accepted) }
        let database = try install.database()
        func rows(_ table: String, site: String) throws -> Int {
            try database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table) WHERE site_id = ?", arguments: [site]) ?? 0 }
        }
        #expect(try rows("events", site: doomed) == 60)
        func consent() async throws -> HTTPResponse.Status {
            try await install.request(.post, "/api/consent", headers: [.contentType: "text/plain", .origin: "https://doomed.example"],
                                      body: #"{"site":"\#(doomed)","analytics":true,"marketing":false}"#).status
        }
        let consentBefore = try await consent()
        #expect(install.scan(Array(marker.utf8)).values.reduce(0, +) > 0, "the scan finds the paths while they are stored")

        let demoBefore = try rows("events", site: install.site)
        let load = EventLoad(port: install.server.port, site: install.site)
        let owner = try await install.signIn(install.ownerEmail, install.ownerPassword)
        let form: HTTPFields = [.cookie: owner.cookie, .contentType: "application/x-www-form-urlencoded"]
        func settings(_ action: String, _ extra: String = "") async throws -> (status: HTTPResponse.Status, headers: HTTPFields, body: String) {
            try await install.request(.post, "/sites/\(doomed)/settings/\(action)", headers: form, body: "csrf=\(owner.csrf)\(extra)")
        }

        // The settings page says what archiving does, in the policy's words.
        let page = try await install.request(.get, "/sites/\(doomed)/settings", headers: [.cookie: owner.cookie]).body
        #expect(page.contains("Archive the site") && page.contains("events: removed 180 days after it was recorded"))

        // Archive: POST-redirect-GET, then the collector refuses the site's events.
        let archived = try await settings("archive")
        #expect(archived.status == .seeOther && archived.headers[.location] == "/sites/\(doomed)/settings?done=archived")
        #expect(try await eventually(40) { try await post(1_000) == .notFound })
        let consentAfter = try await consent()
        #expect(consentBefore == .created && consentAfter == .notFound, "an archived site records no consent")
        // The probe (always the same event id) may have been stored once before the collector's refresh.
        let stored = try rows("events", site: doomed)
        #expect(stored == 60 || stored == 61, "\(stored)")
        let overview = try await install.request(.get, "/", headers: [.cookie: owner.cookie]).body
        #expect(overview.contains("Archived sites") && overview.contains("bring back or delete"))

        // Too early (the collector may still hold the site), then the wrong name: refused, nothing deleted.
        let early = try await settings("delete", "&confirm=Doomed+shop")
        #expect(early.status == .badRequest && early.body.contains("the collector may still be taking its events"), "\(early.status)")
        let restore = try await settings("restore")
        #expect(restore.status == .seeOther, "before deletion starts, the site may still be brought back")
        #expect(try await settings("archive").status == .seeOther)
        let rearchived = ContinuousClock.now
        try await Task.sleep(until: rearchived + .seconds(2 * Site.collectorRefresh + 1))
        let wrong = try await settings("delete", "&confirm=Doomed")
        #expect(wrong.status == .badRequest && wrong.body.contains("Type the site"))
        #expect(try rows("events", site: doomed) == stored, "refused: nothing deleted, nothing more stored")

        let deleted = try await settings("delete", "&confirm=Doomed+shop")
        #expect(deleted.status == .seeOther && deleted.headers[.location] == "/?done=site-deleted")
        let after = try await install.request(.get, "/?done=site-deleted", headers: [.cookie: owner.cookie]).body
        #expect(after.contains("Site deleted") && !after.contains("Doomed shop"))

        // Every table with a site_id column, as the schema has it (not a list kept by the code).
        func siteTables() throws -> [String] { try database.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").filter { table in
                try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table]).contains { ($0["name"] as String) == "site_id" }
            }
        } }
        let tables = try siteTables()
        #expect(tables.count >= 15 && tables.contains("events") && tables.contains("rollup_values"), "\(tables)")
        for table in tables where table != "audit_log" {
            #expect(try rows(table, site: doomed) == 0, "\(table) keeps rows of the deleted site")
        }
        #expect(try database.site(id: doomed) == nil)
        // The scrubber verifies the run once the WAL is truncated (at once, or at its next pass).
        let actions = { try install.cli(["audit", "list", "--limit", "500"]) }
        #expect(try await eventually(90) { try actions().contains("purge_ran") })
        #expect(install.scan(Array(marker.utf8)).values.allSatisfy { $0 == 0 }, "\(install.scan(Array(marker.utf8)))")
        let audit = try actions()
        for action in ["site_archived", "site_deleting", "site_deleted", "purge_ran"] { #expect(audit.contains(action), "\(action)") }
        #expect(try install.cli(["audit", "verify"]).hasPrefix("ok: "))

        // The other site lost nothing it acknowledged meanwhile.
        let figures = await load.stop()
        #expect(figures.accepted > 1000 && figures.failed == 0, "\(figures)")
        #expect(try rows("events", site: install.site) == demoBefore + figures.accepted)
        install.stop()
    }
}
