import Actions
import Foundation
import Privacy
@testable import Store
import Testing

/// Who may issue and use provisioning keys, and the upgrade that lets a key belong to no site.
/// (What the API answers is proven against the running binary in Tests/browser/test_provisioning.py.)
@Suite struct ProvisioningTests {
    @Test func onlyOwnersAndTheOperatorIssueProvisioningKeysWhichManageSitesAndTheirReaders() throws {
        let t = try TestCollector()
        let admin = t.administration
        let owner = try t.database.addUser(User(email: "o@example.org", passwordHash: "x", role: .owner, createdAt: noon))
        let adminUser = try t.database.addUser(User(email: "a@example.org", passwordHash: "x", role: .admin, createdAt: noon))
        let asOwner = Actor.user(owner, sites: [t.site.id]), asAdmin = Actor.user(adminUser, sites: [t.site.id])
        #expect(throws: ActionError.forbidden("user:a@example.org may not do this")) {
            try admin.issueKey(site: nil, label: "x", scope: .provision, by: asAdmin)
        }
        #expect(throws: ActionError.invalid("A provisioning key belongs to no site.")) {
            try admin.issueKey(site: t.site.id, label: "x", scope: .provision, by: asOwner)
        }
        #expect(throws: ActionError.invalid("A stats:read key belongs to a site: name it.")) {
            try admin.issueKey(site: nil, label: "x", scope: .statsRead, by: asOwner)
        }
        let issued = try admin.issueKey(site: nil, label: "agency", scope: .provision, by: asOwner)
        #expect(try issued.record.siteID == nil && t.database.installKeys().map(\.id) == [issued.record.id])
        #expect(try APIKeys.authenticate(database: t.database, token: issued.key)?.scope == .provision)
        _ = try admin.issueKey(site: nil, label: "ops", scope: .provision, by: .cli)

        // The key: sites, goals, statistics keys, managers and viewers; nothing that reaches personal
        // data or every site's exact figures.
        let key = Actor.provisioningKey(id: issued.record.id)
        #expect(key.may(.addSites) && key.may(.removeSites) && key.may(.configure(site: "any")) && key.may(.manageUser(current: .viewer, new: .manager)))
        #expect(key.may(.manageUser(current: nil, new: .viewer)) && key.may(.manageUser(current: .manager, new: nil)))
        #expect(key.may(.issueKey(site: "any", scope: .statsRead)) && !key.isStaffAdmin)
        for role in [Role.owner, .admin] {
            #expect(!key.may(.manageUser(current: nil, new: role)) && !key.may(.manageUser(current: role, new: .viewer)) && !key.may(.manageUser(current: role, new: nil)))
        }
        for denied in [Permission.issueKey(site: nil, scope: .provision), .issueKey(site: "any", scope: .privacyOfficer), .changePolicy,
                       .configureWebhooks, .configureDestinations, .setTerms, .fileRequests, .exportSubjects, .runRequests, .viewPrivacyCenter,
                       .installAlerts, .installAnnotations, .requireTwoFactor] {
            #expect(!key.may(denied), "\(denied)")
        }
        #expect(throws: ActionError.self) { try admin.revokeKey(id: issued.record.id, by: key) }
        try admin.revokeKey(id: issued.record.id, by: asOwner)
        #expect(try APIKeys.authenticate(database: t.database, token: issued.key) == nil)
    }

    /// Keys issued before the upgrade (each with its site) keep working after it.
    @Test func keysIssuedBeforeTheUpgradeKeepTheirSiteAndWork() throws {
        let (dir, path) = try databaseBefore(upgrade: "v30-consolidated-reports")
        let (record, token) = APIKeys.make(site: "oldsite", label: "old", scope: .statsRead, issuedBy: "cli")
        #expect(try sqlite3(path, """
            INSERT INTO api_keys (id, site_id, secret_hash, label, created_at, scope, issued_by)
            VALUES ('\(record.id)', 'oldsite', X'\(Hex.encode(record.secretHash))', 'old', 1, 'stats:read', 'cli')
            """).status == 0)
        let upgraded = try AppDatabase(path: path)
        #expect(try APIKeys.authenticate(database: upgraded, token: token)?.siteID == "oldsite")
        // The table's own check: a provisioning key names no site, any other key one.
        #expect(try sqlite3(path, "INSERT INTO api_keys (id, site_id, secret_hash, label, created_at, scope) VALUES ('p', 'oldsite', zeroblob(32), 'x', 1, 'admin:provision')").status != 0)
        #expect(try sqlite3(path, "INSERT INTO api_keys (id, site_id, secret_hash, label, created_at, scope) VALUES ('s', NULL, zeroblob(32), 'x', 1, 'stats:read')").status != 0)
        _ = dir
    }
}
