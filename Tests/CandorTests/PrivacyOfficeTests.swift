import Collector
import Consent
import Foundation
import Logging
import Privacy
import Retention
import Store
import Storage
import Synchronization
import Testing

/// SQLite's record encoding of an integer (big-endian, the smallest of 1, 2, 3, 4, 6, 8 bytes).
func sqliteIntegerBytes(_ v: Int64) -> [UInt8] {
    let size = switch v {
    case -128...127: 1
    case -32768...32767: 2
    case -8_388_608...8_388_607: 3
    case -2_147_483_648...2_147_483_647: 4
    case -140_737_488_355_328...140_737_488_355_327: 6
    default: 8
    }
    return Array(withUnsafeBytes(of: v.bigEndian) { Array($0) }.suffix(size))
}

let day: TimeInterval = 86_400
let subjectA = "subjectaaaaaaaaaaaaaaaaaaaaaaaaa"
let subjectB = "subjectbbbbbbbbbbbbbbbbbbbbbbbbb"

extension TestCollector {
    var office: PrivacyOffice {
        get throws {
            PrivacyOffice(database: database, policies: collector.policies, subjects: try SubjectHasher(database: database),
                          now: clock.closure)
        }
    }

    /// A consented visit of `subject`: two pageviews and a form with an e-mail field.
    func consentedVisit(_ subject: String, ip: String, path: String = "/a", email: String? = nil) async throws {
        var events = [IncomingEvent(site: site.id, url: "https://example.com\(path)", consent: .granted(analytics: true, marketing: true),
                                    subject: subject),
                      IncomingEvent(site: site.id, url: "https://example.com\(path)/2", consent: .granted(analytics: true, marketing: true),
                                    subject: subject)]
        if let email {
            events.append(IncomingEvent(site: site.id, name: "form_submit", url: "https://example.com/contact",
                                        props: [("form", .string("contact")), ("field.email", .string(email))],
                                        consent: .granted(analytics: true, marketing: true), subject: subject))
        }
        try await ingest(events, ip: ip)
    }
}

func policyWith(_ edit: (inout Policy) -> Void) -> Policy {
    var p = Policy.default
    edit(&p)
    return p
}

@Suite struct DeletionRequestTests {
    @Test func erasureRemovesEveryLinkedRowAndLeavesNoBytesOfTheSubjectOnDisk() async throws {
        let t = try TestCollector(policy: policyWith { $0.formFieldAllowlist = ["email"] })
        let office = try t.office
        // Before consent: an anonymous pageview in the same session as the consented ones.
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/landing")], ip: "81.2.69.160")
        try await t.consentedVisit(subjectA, ip: "81.2.69.160")
        try await t.consentedVisit(subjectB, ip: "81.2.69.192")
        try t.database.insertConsentRecord(ConsentRecord(siteID: t.site.id, timestamp: 1, bannerVersion: "v1", policy: "default",
                                                         policyVersion: 1, analytics: true, marketing: false,
                                                         subject: try SubjectHasher(database: t.database).hash(subjectA)))
        #expect(try t.database.eventCount() == 5)
        let hashA = try SubjectHasher(database: t.database).hash(subjectA)
        let dbFile = t.dir.file("candor.sqlite")
        #expect(occurrences(of: sqliteIntegerBytes(hashA), inFile: dbFile) + occurrences(of: sqliteIntegerBytes(hashA), inFile: dbFile + "-wal") > 0)

        let filed = try office.file(site: t.site.id, identifier: .subject(subjectA), filedBy: "test")
        #expect(filed.status == .received)
        #expect(filed.deadlineAt - filed.receivedAt == 30 * 86_400_000)
        let done = try await office.process(filed, actor: "test")
        #expect(done.status == .done)
        #expect(done.subjectHash == nil)

        // The receipt's counts are the rows that went: 3 events (one from before consent), 1 session, 1 consent record unlinked.
        let receipt = try #require(try JSONSerialization.jsonObject(with: Data(done.receipt!.utf8)) as? [String: Any])
        let deleted = try #require(receipt["deleted"] as? [String: Int])
        #expect(deleted == ["events": 3, "sessions": 1, "conversions": 0, "consent_records": 0])
        #expect(receipt["consent_records_kept_unlinked"] as? Int == 1)
        #expect(receipt["on_time"] as? Bool == true)
        #expect(try t.database.eventCount() == 2)
        #expect(try t.database.sessions(site: t.site.id).count == 1)
        let records = try t.database.consentRecords(site: t.site.id)
        #expect(records.count == 1 && records[0].subject == nil)

        // No byte of the subject's hash (nor the id itself) is left in the file or its WAL.
        for file in [dbFile, dbFile + "-wal", dbFile + "-shm"] {
            #expect(occurrences(of: sqliteIntegerBytes(hashA), inFile: file) == 0, "subject hash in \(file)")
            #expect(occurrences(of: subjectA, inFile: file) == 0)
        }
        // The other subject is untouched and still findable.
        #expect(try office.export(site: t.site.id, identifier: .subject(subjectB), actor: "test").table("events")!.rows.count == 2)
    }

    /// Conversions the pixel tracked in the subject's visits go with them, the one from before
    /// consent too (it carries no subject, only its visit); another visitor's stays.
    @Test func theConversionsOfAnErasedVisitGoWithIt() async throws {
        let t = try TestCollector()
        let office = try t.office
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/landing"),
                            IncomingEvent(site: t.site.id, name: "conversion", url: "https://example.com/landing", value: 49, currency: "EUR")],
                           ip: "81.2.69.160")
        try await t.ingest([IncomingEvent(site: t.site.id, name: "conversion", url: "https://example.com/thanks", value: 30, currency: "EUR",
                                          consent: .granted(analytics: true, marketing: false), subject: subjectA)], ip: "81.2.69.160")
        try await t.ingest([IncomingEvent(site: t.site.id, name: "conversion", url: "https://example.com/thanks", value: 10, currency: "EUR")],
                           ip: "81.2.69.192")
        #expect(try t.database.conversions(site: t.site.id).count == 3)
        let export = try office.export(site: t.site.id, identifier: .subject(subjectA), actor: "test")
        #expect(export.table("conversions")!.rows.count == 2)
        let done = try await office.process(try office.file(site: t.site.id, identifier: .subject(subjectA), filedBy: "test"), actor: "test")
        let receipt = try #require(try JSONSerialization.jsonObject(with: Data(done.receipt!.utf8)) as? [String: Any])
        #expect((receipt["deleted"] as? [String: Int])?["conversions"] == 2)
        #expect(try t.database.conversions(site: t.site.id).map(\.value) == [10])
    }

    /// A request whose rows are deleted but whose WAL truncation fails is `erasing`, with no
    /// receipt and no `request_done`; the next run completes it. A failing request leaves the
    /// others going.
    @Test func aRequestIsDoneOnlyAfterAVerifiedTruncation() async throws {
        let t = try TestCollector()
        let failing = Mutex(true)
        let scrubber = Scrubber(database: t.database, policies: t.collector.policies, now: t.clock.closure) {
            if failing.withLock({ $0 }) { throw WALTruncationFailed(attempts: 1, lastError: "SQLITE_BUSY (forced)") }
            return try await t.database.truncateWAL()
        }
        let office = PrivacyOffice(database: t.database, policies: t.collector.policies, subjects: try SubjectHasher(database: t.database),
                                   now: t.clock.closure, scrubber: scrubber)
        try await t.consentedVisit(subjectA, ip: "81.2.69.160")
        try await t.consentedVisit(subjectB, ip: "81.2.69.192")
        let hashA = try SubjectHasher(database: t.database).hash(subjectA)
        let a = try office.file(site: t.site.id, identifier: .subject(subjectA), filedBy: "test")
        let b = try office.file(site: t.site.id, identifier: .subject(subjectB), filedBy: "test")
        let first = await office.processOpenRequests(actor: "test")
        #expect(first.done.isEmpty)
        #expect(Set(first.erasing.map(\.id)) == Set([a.id, b.id]))
        #expect(first.problems.contains { $0.contains("forced") })
        let erasing = try #require(try t.database.privacyRequest(id: a.id))
        #expect(erasing.status == .erasing && erasing.receipt == nil && erasing.subjectHash == nil)
        #expect(try t.database.eventCount() == 0)
        var actions = try t.database.recentAuditEntries(limit: 10).map(\.action)
        #expect(!actions.contains("request_done") && actions.filter { $0 == "request_erased" }.count == 2)
        #expect(try office.reject(id: a.id, reason: "too late", actor: "test") == false)   // its rows are gone already

        failing.withLock { $0 = false }
        let second = await office.processOpenRequests(actor: "test")
        #expect(Set(second.done.map(\.id)) == Set([a.id, b.id]) && second.erasing.isEmpty)
        let done = try #require(try t.database.privacyRequest(id: a.id))
        let receiptText = try #require(done.receipt)
        let receipt = try #require(try JSONSerialization.jsonObject(with: Data(receiptText.utf8)) as? [String: Any])
        let wal = try #require((receipt["verified"] as? [String: Any])?["write_ahead_log"] as? [String: Any])
        #expect(wal["bytes_after"] as? Int == 0)
        #expect(receipt["deleted"] as? [String: Int] == ["events": 2, "sessions": 1, "conversions": 0, "consent_records": 0])
        actions = try t.database.recentAuditEntries(limit: 10).map(\.action)
        #expect(actions.filter { $0 == "request_done" }.count == 2)
        let file = t.dir.file("candor.sqlite")
        for suffix in ["", "-wal", "-shm"] {
            #expect(occurrences(of: sqliteIntegerBytes(hashA), inFile: file + suffix) == 0, "subject hash in candor.sqlite\(suffix)")
        }
        #expect(try AuditLog(database: t.database).verify().isIntact)
    }

    /// A real SQLITE_BUSY: another connection reading an old snapshot keeps the WAL from being
    /// truncated; the attempts fail, then succeed once the reader is gone.
    @Test func aHeldReadMakesTheTruncationWaitThenItSucceeds() async throws {
        let t = try TestCollector()
        try await t.consentedVisit(subjectA, ip: "81.2.69.160")
        let reader = try HeldRead(path: t.dir.file("candor.sqlite"))
        try await t.consentedVisit(subjectB, ip: "81.2.69.192")
        await #expect(throws: WALTruncationFailed.self) {
            try await t.database.truncateWAL(attempts: 3, attemptTimeout: .milliseconds(50))
        }
        reader.release()
        let done = try await t.database.truncateWAL(attempts: 3)
        #expect(done.outcome == .truncated && done.framesBefore > 0)
        #expect((try? FileManager.default.attributesOfItem(atPath: t.dir.file("candor.sqlite-wal"))[.size] as? Int) == 0)
    }

    @Test func anEmailRequestErasesTheJourneyOfTheLeadWithThatAddress() async throws {
        let t = try TestCollector(policy: policyWith { $0.formFieldAllowlist = ["email"] })
        let office = try t.office
        try await t.consentedVisit(subjectA, ip: "81.2.69.160", email: " Lead@Example.org ")
        try await t.consentedVisit(subjectB, ip: "81.2.69.192")
        // The address is never stored, only its keyed hash.
        #expect(occurrences(of: "lead@example.org", inFile: t.dir.file("candor.sqlite")) == 0)
        #expect(occurrences(of: "Lead@Example.org", inFile: t.dir.file("candor.sqlite-wal")) == 0)
        let export = try office.export(site: t.site.id, identifier: .email("lead@example.org"), actor: "test")
        #expect(export.table("events")!.rows.count == 3)
        let filed = try office.file(site: t.site.id, identifier: .email("LEAD@example.org"), filedBy: "test")
        _ = await office.processOpenRequests(actor: "test")
        let receipt = try #require(try t.database.privacyRequest(id: filed.id)?.receipt)
        #expect(receipt.contains(#""deleted":{"events":3,"sessions":1,"conversions":0,"consent_records":0}"#))
        #expect(try t.database.eventCount() == 2)
    }

    @Test func conversionsFromWebhooksAreErasedAndExportedByEveryKindOfIdentifier() async throws {
        let t = try TestCollector()
        let office = try t.office
        let hasher = try SubjectHasher(database: t.database)
        for (id, subject, email, user) in [("c1", subjectA, nil, nil), ("c2", nil, "buyer@example.org", nil), ("c3", nil, nil, "u-42"),
                                           ("c4", subjectB, nil, nil)] as [(String, String?, String?, String?)] {
            try t.database.insertConversion(ConversionRow(
                siteID: t.site.id, provider: "generic", externalID: id, kind: .sale, timestamp: 1, value: 10, currency: "USD",
                subject: subject.map { hasher.hash($0) }, emailHash: email.map { hasher.hash($0, kind: .email) },
                userHash: user.map { hasher.hash($0, kind: .userID) }))
        }
        #expect(try office.export(site: t.site.id, identifier: .userID("u-42"), actor: "t").table("conversions")?.rows.count == 1)
        for identifier in [PrivacyOffice.Identifier.subject(subjectA), .email("Buyer@example.org"), .userID("u-42")] {
            let filed = try office.file(site: t.site.id, identifier: identifier, filedBy: "test")
            let done = try await office.process(filed, actor: "test")
            #expect(done.receipt?.contains(#""conversions":1"#) == true, "\(identifier)")
        }
        #expect(try t.database.conversions(site: t.site.id).map(\.externalID) == ["c4"])
    }

    @Test func requestsHaveDeadlinesAndCanBeRejectedAndOverdueOnesAreCounted() async throws {
        let t = try TestCollector(policy: policyWith { $0.deletionDeadlineDays = 7 })
        let office = try t.office
        #expect(throws: PrivacyOfficeError.invalidIdentifier("not an e-mail address")) {
            try office.file(site: t.site.id, identifier: .email("nobody"), filedBy: "test")
        }
        #expect(throws: PrivacyOfficeError.unknownSite("nope")) {
            try office.file(site: "nope", identifier: .subject(subjectA), filedBy: "test")
        }
        let a = try office.file(site: t.site.id, identifier: .subject(subjectA), filedBy: "test")
        let b = try office.file(site: t.site.id, identifier: .userID("u-42"), filedBy: "test")
        #expect(a.deadlineAt - a.receivedAt == 7 * 86_400_000)
        #expect(try t.database.privacyRequestCounts(now: a.receivedAt).overdue == 0)
        t.clock.advance(8 * day)
        #expect(try t.database.privacyRequestCounts(now: Int64(t.clock.now.timeIntervalSince1970 * 1000)) == (open: 2, overdue: 2))
        #expect(try office.reject(id: b.id, reason: "identity not verified", actor: "test"))
        #expect(try !office.reject(id: b.id, reason: "twice", actor: "test"))
        let rejected = try #require(try t.database.privacyRequest(id: b.id))
        #expect(rejected.status == .rejected && rejected.reason == "identity not verified" && rejected.subjectHash == nil)
        let done = await office.processOpenRequests(actor: "test").done
        #expect(done.map(\.id) == [a.id])
        #expect(done[0].receipt!.contains(#""on_time":false"#))
        #expect(try t.database.privacyRequestCounts(now: Int64(t.clock.now.timeIntervalSince1970 * 1000)) == (open: 0, overdue: 0))
        let actions = try t.database.recentAuditEntries(limit: 10).map(\.action)
        #expect(actions == ["request_done", "request_erased", "request_rejected", "request_received", "request_received"])
    }
}

@Suite struct ExportTests {
    @Test func exportHoldsTheSubjectsRowsPolicyAndConsentHistoryButNoHashes() async throws {
        let t = try TestCollector()
        let office = try t.office
        try await t.consentedVisit(subjectA, ip: "81.2.69.160", path: "/mine")
        try await t.consentedVisit(subjectB, ip: "81.2.69.192", path: "/theirs")
        try t.database.insertConsentRecord(ConsentRecord(siteID: t.site.id, timestamp: 5, bannerVersion: "v2", policy: "default",
                                                         policyVersion: 1, analytics: true, marketing: true,
                                                         subject: try SubjectHasher(database: t.database).hash(subjectA)))
        let export = try office.export(site: t.site.id, identifier: .subject(subjectA), actor: "test")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(export.json.utf8)) as? [String: Any])
        let events = try #require(doc["events"] as? [[String: Any]])
        #expect(events.map { $0["path"] as? String } == ["/mine", "/mine/2"])
        #expect(events.allSatisfy { $0["visitor"] == nil && $0["subject"] == nil && $0["email_hash"] == nil })
        #expect((doc["sessions"] as? [Any])?.count == 1)
        #expect((doc["consent_history"] as? [[String: Any]])?.first?["banner_version"] as? String == "v2")
        #expect((doc["policy"] as? [String: Any])?["consent_mode"] as? String == "opt-in")
        #expect(try t.database.recentAuditEntries(limit: 1).first?.action == "export_made")
        // Unknown subjects get an empty export, not an error.
        #expect(try office.export(site: t.site.id, identifier: .subject("nobodynobodynobody"), actor: "t").table("events")!.rows.isEmpty)
    }

    @Test func csvCellsCannotStartFormulas() throws {
        let table = ResultTable(name: "t", columns: ["a", "b"], rows: [
            [.text("=HYPERLINK(\"http://x\")"), .integer(-5)],
            [.text("+1"), .text("-2")],
            [.text("@SUM(A1)"), .text("plain, with comma")],
            [.text("\tTab"), .null],
        ])
        let csv = try CSVRendering.text(table)
        #expect(csv == "a,b\r\n\"'=HYPERLINK(\"\"http://x\"\")\",-5\r\n'+1,'-2\r\n'@SUM(A1),\"plain, with comma\"\r\n'\tTab,\r\n")
    }
}

@Suite struct AuditLogTests {
    @Test func theChainVerifiesAndAnEditWithSqlite3IsFoundAtItsEntry() throws {
        let dir = TempDir()
        let path = dir.file("candor.sqlite")
        let database = try AppDatabase(path: path)
        let audit = AuditLog(database: database)
        for i in 1...5 { try audit.record(actor: "test", action: "step", detail: ["i": .int(Int64(i))]) }
        let ok = try audit.verify()
        #expect(ok.isIntact && ok.entries == 5 && ok.headSeq == 5)

        // The table refuses updates; someone with the file can still drop the trigger and edit.
        #expect(try sqlite3(path, "UPDATE audit_log SET detail = '{\"i\":33}' WHERE seq = 3").status != 0)
        #expect(try audit.verify().isIntact)
        #expect(try sqlite3(path, "DROP TRIGGER audit_log_append_only; UPDATE audit_log SET detail = '{\"i\":33}' WHERE seq = 3").status == 0)
        let broken = try audit.verify()
        #expect(broken.firstBroken == 3)
        #expect(broken.problem == "contents do not match the entry's hash")

        // Deleting an entry breaks the link after the gap.
        #expect(try sqlite3(path, "UPDATE audit_log SET detail = '{\"i\":3}' WHERE seq = 3; DELETE FROM audit_log WHERE seq = 4").status == 0)
        let gap = try audit.verify()
        #expect(gap.firstBroken == 5)
    }

    @Test func pruningByRetentionLeavesAVerifiableAnchor() async throws {
        let t = try TestCollector(policy: policyWith { $0.name = "default"; $0.retentionDays[.auditLog] = 10 })
        let audit = AuditLog(database: t.database, now: t.clock.closure)
        for i in 1...3 { try audit.record(actor: "test", action: "old", detail: ["i": .int(Int64(i))]) }
        t.clock.advance(11 * day)
        try audit.record(actor: "test", action: "young")
        let purger = Purger(database: t.database, policies: t.collector.policies, now: t.clock.closure)
        let lines = try await purger.run(actor: "test").lines
        #expect(lines.first { $0.target == "audit_log" }?.rows == 3)
        let v = try audit.verify()
        #expect(v.isIntact, "\(v.problem ?? "")")
        #expect(try t.database.auditEntries().map(\.action) == ["young", "audit_pruned", "purge_ran"])
    }

}

@Suite struct RetentionTests {
    @Test func rowsOlderThanTheirClassRetentionGoInChunksYoungerOnesStay() async throws {
        let policy = policyWith { $0.retentionDays[.events] = 30; $0.retentionDays[.sessions] = 30; $0.columnExpiryDays = [:] }
        let t = try TestCollector(policy: policy)
        for i in 0..<7 {
            try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/old\(i)")], ip: "81.2.69.\(100 + i)")
        }
        t.clock.advance(20 * day)
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/young")], ip: "81.2.69.160")
        t.clock.advance(11 * day)
        var purger = Purger(database: t.database, policies: t.collector.policies, now: t.clock.closure)
        purger.chunk = 3
        let plan = try purger.plan()
        let events = try #require(plan.first { $0.target == "events" && $0.site == t.site.id })
        #expect(events.rows == 7 && events.days == 30)
        #expect(events.reason.hasPrefix("older than 30 days"))
        #expect(try t.database.eventCount() == 8)   // a dry run changes nothing

        let done = try await purger.run(actor: "test").lines
        #expect(done.first { $0.target == "events" }?.rows == 7)
        #expect(done.first { $0.target == "sessions" }?.rows == 7)
        #expect(try t.database.eventCount() == 1)
        #expect(try t.database.sessions(site: t.site.id).count == 1)
        let entry = try #require(try t.database.recentAuditEntries(limit: 1).first)
        #expect(entry.action == "purge_ran")
        #expect(entry.detail.contains(#""\#(t.site.id):events":7"#))
        #expect(try purger.plan().allSatisfy { $0.rows == 0 })
    }

    /// A purge leaves alone a run another process is carrying out (a fresh heartbeat) and closes
    /// one a stopped process left (an old heartbeat) with the counts it reached.
    @Test func aPurgeClosesOnlyAbandonedRuns() async throws {
        let t = try TestCollector()
        let now = Int64(t.clock.now.timeIntervalSince1970 * 1000)
        let (live, abandoned) = try t.database.transaction { tx in
            let live = try tx.startPurgeRun(actor: "other-process", at: now - 60_000)
            try tx.countPurged(run: live, target: "x:events", rows: 5, at: now - 1000)
            let abandoned = try tx.startPurgeRun(actor: "stopped-process", at: now - 3_600_000)
            try tx.countPurged(run: abandoned, target: "x:events", rows: 7, at: now - 3_000_000)
            return (live, abandoned)
        }
        try await Purger(database: t.database, policies: t.collector.policies, now: t.clock.closure).run(actor: "test")
        let runs = try t.database.unverifiedPurgeRuns()
        #expect(runs.map(\.id) == [live] && runs[0].finishedAt == nil)
        let closed = try t.database.recentAuditEntries(limit: 10, action: "purge_ran")
        #expect(closed.contains { $0.actor == "stopped-process" && $0.detail.contains(#""x:events":7"#) })
        #expect(!closed.contains { $0.actor == "other-process" })
        _ = abandoned
    }

    @Test func identifyingColumnsExpireBeforeTheRows() async throws {
        let policy = policyWith { $0.columnExpiryDays = [.subject: 10]; $0.formFieldAllowlist = ["email"] }
        let t = try TestCollector(policy: policy)
        try await t.consentedVisit(subjectA, ip: "81.2.69.160", email: "x@example.org")
        t.clock.advance(5 * day)
        try await t.consentedVisit(subjectB, ip: "81.2.69.192")
        t.clock.advance(6 * day)
        let purger = Purger(database: t.database, policies: t.collector.policies, now: t.clock.closure)
        #expect(try purger.plan().first { $0.target == "expire:subject" }?.rows == 4)   // 3 events + 1 session of A
        try await purger.run(actor: "test")
        #expect(try t.database.eventCount() == 5)   // rows stay
        let office = try t.office
        #expect(try office.export(site: t.site.id, identifier: .subject(subjectA), actor: "t").table("events")!.rows.isEmpty)
        #expect(try office.export(site: t.site.id, identifier: .email("x@example.org"), actor: "t").table("events")!.rows.isEmpty)
        #expect(try office.export(site: t.site.id, identifier: .subject(subjectB), actor: "t").table("events")!.rows.count == 2)
    }

    @Test func rollupsOlderThanTheirRetentionArePurged() async throws {
        let t = try TestCollector(policy: policyWith { $0.retentionDays = [.rollups: 30]; $0.columnExpiryDays = [:] })
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/old")], ip: "81.2.69.1")
        try RollupJob.run(database: t.database, now: t.clock.now)
        t.clock.advance(40 * day)
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/new")], ip: "81.2.69.1")
        try RollupJob.run(database: t.database, now: t.clock.now)
        let purger = Purger(database: t.database, policies: t.collector.policies, now: t.clock.closure)
        #expect(try purger.plan().first { $0.target == "rollups" }?.rows == 1)
        try await purger.run(actor: "test")
        let days = Int64(t.clock.now.timeIntervalSince1970 * 1000) / 86_400_000
        #expect(try t.database.rollupBreakdown(site: t.site.id, fromDay: days - 60, toDay: days, key: "path").map(\.value) == ["/new"])
        #expect(try t.database.eventCount() == 2)   // events have their own retention
    }

    @Test func theSchedulerRunsDueJobsAndRemembersAcrossRestarts() async throws {
        let t = try TestCollector()
        let runs = Counter()
        func scheduler() -> JobScheduler {
            JobScheduler(ledger: t.database, jobs: [ScheduledJob(name: "purge", interval: .seconds(6 * 3600)) {
                runs.add(); return "ran"
            }], logger: Logger(label: "test"), now: t.clock.closure)
        }
        #expect(await scheduler().tick() == ["purge"])
        t.clock.advance(3600)
        #expect(await scheduler().tick().isEmpty)   // a restart an hour later does not run it again
        t.clock.advance(5 * 3600)
        #expect(await scheduler().tick() == ["purge"])
        #expect(runs.value == 2)
        #expect(try t.database.lastRun(job: "purge") == Int64(t.clock.now.timeIntervalSince1970 * 1000))
    }
}

@Suite struct PolicyPrivacySectionTests {
    @Test func expireAndPrivacySectionsParseAndFeedTheRecordOfProcessing() throws {
        let p = try Policy(toml: """
            [expire]
            subject = 14
            click_id = 0
            geo_detail = 60
            [privacy]
            deletion_deadline_days = 10
            keep_consent_proof = false
            """, name: "strict")
        #expect(p.columnExpiryDays == [.subject: 14, .geoDetail: 60])
        #expect(p.deletionDeadlineDays == 10 && !p.keepConsentProof)
        #expect(throws: PolicyError.self) { try Policy(toml: "[privacy]\ndeletion_deadline_days = 365", name: "x") }
        #expect(throws: PolicyError.self) { try Policy(toml: "[expire]\nemail = 3", name: "x") }
        let md = RecordOfProcessing.markdown(PolicyBook(policies: [p, .default]))
        #expect(md.contains("## Policy `strict`"))
        #expect(md.contains("| subject | 14 days |"))
        #expect(md.contains("| events | 180 days |"))
        #expect(md.contains("Processors: none"))
    }
}
