import Actions
@testable import Admin
import Collector
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Privacy
import Store
import Storage
import Testing
import TwoFactor

@Suite struct TwoFactorTests {
    /// RFC 6238 appendix B (SHA-1 rows; secret "12345678901234567890", 8 digits), and the same
    /// codes' last six digits as apps show them.
    @Test func totpMatchesTheRFC6238TestVectors() {
        let secret = Array("12345678901234567890".utf8)
        let rows: [(TimeInterval, String)] = [(59, "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"),
                                               (1_234_567_890, "89005924"), (2_000_000_000, "69279037"), (20_000_000_000, "65353130")]
        for (t, code) in rows {
            #expect(TOTP(secret: secret, digits: 8).code(at: Date(timeIntervalSince1970: t)) == code, "T = \(t)")
            #expect(TOTP(secret: secret).code(at: Date(timeIntervalSince1970: t)) == String(code.suffix(6)), "T = \(t)")
        }
        // One step of drift either way is accepted, two are not; a step at or before the last used one never is.
        let totp = TOTP(secret: secret)
        let at = Date(timeIntervalSince1970: 1_111_111_111)
        let step = totp.step(at: at)
        #expect(totp.match(totp.code(step: step - 1), at: at, after: 0) == step - 1)
        #expect(totp.match(totp.code(step: step + 1), at: at, after: 0) == step + 1)
        #expect(totp.match(totp.code(step: step - 2), at: at, after: 0) == nil)
        #expect(totp.match(totp.code(step: step), at: at, after: step) == nil)
        #expect(totp.match("12345", at: at, after: 0) == nil && totp.match("abcdef", at: at, after: 0) == nil)
    }

    /// RFC 4648 section 10's base32 vectors (without padding), and decoding as apps show keys.
    @Test func base32MatchesRFC4648() {
        for (plain, encoded) in [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI")] {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
            #expect(Base32.decode(encoded.lowercased()) == Array(plain.utf8))
        }
        #expect(Base32.decode("MZXW 6YTB-OI==") == Array("foobar".utf8))
        #expect(Base32.decode("MZ1W") == nil)
    }

    @Test func recoveryCodesAreTenDistinctAndTypedAnyHow() {
        let codes = RecoveryCodes.generate()
        #expect(codes.count == 10 && Set(codes).count == 10)
        for c in codes { #expect(c.count == 11 && RecoveryCodes.normalize(c.uppercased().replacingOccurrences(of: "-", with: " ")) == c.replacingOccurrences(of: "-", with: "")) }
        #expect(RecoveryCodes.normalize("abcde-fghi0") == nil)  // 0 and i are not in the alphabet
    }

    @Test func qrCodeIsDrawnByLibqrencode() throws {
        let qr = try #require(QRCode.svg("otpauth://totp/Candor:a%40b.example?secret=MZXW6YTBOI&issuer=Candor"))
        #expect(qr.svg.hasPrefix("<svg") && qr.svg.contains("<path fill=\"#000\" d=\"M4 4h7v1h-7z"))  // the finder pattern's top row
        #expect(qr.pixels % 5 == 0 && qr.pixels >= (21 + 8) * 5)
    }

    /// The sign-in with a second factor through the dashboard's routes, on an injected clock:
    /// the password alone opens no session; a code opens one once; a replayed code, a code from
    /// two steps ago and a sixth wrong code fail (the last ends the challenge); a challenge
    /// expires after five minutes; a recovery code works once; the secret is sealed on disk.
    @Test func signInNeedsTheSecondFactorOnceItIsOn() async throws {
        let f = try await DashboardFixture()
        try await f.app.test(.router) { client in
            func post(_ uri: String, _ body: String, _ cookie: String?, from address: String? = nil) async throws -> TestResponse {
                var h: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
                if let cookie { h[.cookie] = cookie }
                if let address { h[.init("X-Forwarded-For")!] = address }
                return try await client.execute(uri: uri, method: .post, headers: h, body: ByteBuffer(string: body))
            }
            func setCookie(_ r: TestResponse, _ name: String) -> String? {
                r.headers[values: .setCookie].first { $0.hasPrefix(name + "=") && !$0.hasPrefix(name + "=;") }?.split(separator: ";").first.map(String.init)
            }
            // Enrolment: the page shows the key; a wrong code is refused; the right one turns it on with 10 codes.
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let csrf = try await client.csrf(owner)
            let page = try await client.page("/account/two-factor", owner)
            #expect(page.0 == .ok && page.1.contains("data:image/svg+xml;base64,"))
            let key = try #require(page.1.range(of: #"id="totp-secret">([A-Z2-7 ]+)<"#, options: .regularExpression)
                .map { String(page.1[$0].dropFirst(#"id="totp-secret">"#.count).dropLast()) })
            let totp = TOTP(secret: try #require(Base32.decode(key)))
            #expect(try await post("/account/two-factor/enable", "csrf=\(csrf)&code=000000", owner).status == .badRequest
                    || totp.code(at: f.t.clock.now) == "000000")
            let enabled = try await post("/account/two-factor/enable", "csrf=\(csrf)&code=\(totp.code(at: f.t.clock.now))", owner)
            let shown = String(buffer: enabled.body)
            let codes = shown.matches(of: /<li><code>([a-z2-9]{5}-[a-z2-9]{5})<\/code><\/li>/).map { String($0.1) }
            #expect(enabled.status == .ok && codes.count == 10)
            // The key is sealed: neither its bytes nor its base32 are in the database or its WAL; codes only as hashes.
            let disk = try Data(contentsOf: URL(fileURLWithPath: f.t.dir.file("candor.sqlite"))) + ((try? Data(contentsOf: URL(fileURLWithPath: f.t.dir.file("candor.sqlite-wal")))) ?? Data())
            #expect(disk.range(of: Data(totp.secret)) == nil && disk.range(of: Data(key.replacingOccurrences(of: " ", with: "").utf8)) == nil)
            for c in codes { #expect(disk.range(of: Data(c.utf8)) == nil && disk.range(of: Data(c.replacingOccurrences(of: "-", with: "").utf8)) == nil) }

            // The password alone: a challenge cookie, no session.
            f.t.clock.advance(30)
            let first = try await client.login("owner@example.org", f.ownerPassword)
            #expect(first.0.status == .seeOther && first.0.headers[.location] == "/login/code" && first.1 == nil)
            let challenge = try #require(setCookie(first.0, "candor_challenge"))
            #expect(first.0.headers[values: .setCookie].contains { $0.contains("Path=/login; HttpOnly; SameSite=Strict") })
            #expect(try await client.page("/", challenge).0 == .seeOther)
            // A code from two steps ago fails; the current one opens a session.
            #expect(try await post("/login/code", "code=\(totp.code(at: f.t.clock.now.addingTimeInterval(-60)))", challenge).status == .unauthorized)
            let code = totp.code(at: f.t.clock.now)
            let signedIn = try await post("/login/code", "code=\(code)", challenge)
            let session = try #require(setCookie(signedIn, "candor_session"))
            let dashboard = try await client.page("/", session).0
            #expect(signedIn.status == .seeOther && dashboard == .ok)
            // The challenge is spent; the same code in a new challenge is a replay.
            #expect(try await post("/login/code", "code=\(code)", challenge).status == .unauthorized)
            let second = try #require(setCookie(try await client.login("owner@example.org", f.ownerPassword).0, "candor_challenge"))
            #expect(try await post("/login/code", "code=\(code)", second).status == .unauthorized)
            // Five wrong codes end the challenge: the right one then asks for the password again.
            for i in 0..<4 { #expect(try await post("/login/code", "code=99999\(i)", second).status == .unauthorized) }
            f.t.clock.advance(30)
            let late = try await post("/login/code", "code=\(totp.code(at: f.t.clock.now))", second)
            #expect(late.status == .unauthorized && String(buffer: late.body).contains("Enter your password again"))
            // A challenge lasts five minutes.
            let third = try #require(setCookie(try await client.login("owner@example.org", f.ownerPassword).0, "candor_challenge"))
            f.t.clock.advance(301)
            #expect(String(buffer: try await post("/login/code", "code=\(totp.code(at: f.t.clock.now))", third).body).contains("Enter your password again"))
            // A recovery code works once, typed in capitals with a space.
            let fourth = try #require(setCookie(try await client.login("owner@example.org", f.ownerPassword).0, "candor_challenge"))
            let typed = codes[3].uppercased().replacingOccurrences(of: "-", with: "+")
            #expect(setCookie(try await post("/login/code", "code=\(typed)", fourth), "candor_session") != nil)
            let fifth = try #require(setCookie(try await client.login("owner@example.org", f.ownerPassword).0, "candor_challenge"))
            #expect(try await post("/login/code", "code=\(codes[3])", fifth).status == .unauthorized)
            #expect(try f.t.database.recentAuditEntries(limit: 10, action: "recovery_code_used").count == 1)
            #expect(try f.t.database.twoFactor(user: f.t.database.user(email: "owner@example.org")!.id!)?.unusedRecoveryCodes == 9)

            // 20 wrong codes in a day from 20 addresses, over four sign-ins (5 each, 31 s apart: the
            // throttle's longest delay per account): the right code is refused for the rest of the
            // day, a recovery code is not.
            var challengeCookie = ""
            for n in 0..<20 {
                f.t.clock.advance(31)
                if n % 5 == 0 {
                    challengeCookie = try #require(setCookie(try await client.login("owner@example.org", f.ownerPassword, from: "203.0.113.\(n)").0, "candor_challenge"))
                }
                let wrong = try await post("/login/code", "code=\(n % 2 == 0 ? "000001" : "999998")", challengeCookie, from: "203.0.113.\(n)")
                #expect(wrong.status == .unauthorized, "wrong code \(n): \(wrong.status)")
            }
            f.t.clock.advance(31)
            let locked = try #require(setCookie(try await client.login("owner@example.org", f.ownerPassword, from: "198.51.100.1").0, "candor_challenge"))
            let refused = try await post("/login/code", "code=\(totp.code(at: f.t.clock.now))", locked, from: "198.51.100.1")
            #expect(refused.status == .tooManyRequests && String(buffer: refused.body).contains("A recovery code still signs in"))
            #expect(setCookie(try await post("/login/code", "code=\(codes[5])", locked, from: "198.51.100.1"), "candor_session") != nil)
            #expect(try f.t.database.recentAuditEntries(limit: 50, action: "two_factor_codes_locked").count == 1)
            // A day later codes work again.
            f.t.clock.advance(86_400)
            let later = try #require(setCookie(try await client.login("owner@example.org", f.ownerPassword, from: "198.51.100.2").0, "candor_challenge"))
            #expect(setCookie(try await post("/login/code", "code=\(totp.code(at: f.t.clock.now))", later, from: "198.51.100.2"), "candor_session") != nil)
        }
    }

    /// Roles that must use a second factor: their members without one reach only enrolment and
    /// sign-out; the requirement cannot be turned off by the user; an operator's reset ends the
    /// account's sessions and sends it back to enrolment.
    @Test func requiredRolesEnrolBeforeAnythingElse() async throws {
        let f = try await DashboardFixture()
        try Administration(database: f.t.database, policies: f.t.collector.policies).setTwoFactorRoles([.owner, .admin], by: .cli)
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            for path in ["/", "/sites/\(f.t.site.id)", "/users", "/privacy", "/account"] {
                let r = try await client.page(path, owner)
                #expect(r.0 == .seeOther && r.2[.location] == "/account/two-factor", "\(path)")
            }
            let page = try await client.page("/account/two-factor", owner)
            #expect(page.0 == .ok && page.1.contains("Your role must sign in with a second factor"))
            // Viewers are not required: their pages open.
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            #expect(try await client.page("/", viewer).0 == .ok)
            let key = try #require(page.1.range(of: #"id="totp-secret">([A-Z2-7 ]+)<"#, options: .regularExpression)
                .map { String(page.1[$0].dropFirst(#"id="totp-secret">"#.count).dropLast()) })
            let totp = TOTP(secret: try #require(Base32.decode(key)))
            let csrf = String(try #require(page.1.firstMatch(of: /name="csrf" value="([0-9a-f]+)"/)).1)
            let r = try await client.execute(uri: "/account/two-factor/enable", method: .post,
                                             headers: [.contentType: "application/x-www-form-urlencoded", .cookie: owner],
                                             body: ByteBuffer(string: "csrf=\(csrf)&code=\(totp.code(at: f.t.clock.now))"))
            let opened = try await client.page("/", owner).0
            #expect(r.status == .ok && opened == .ok)
            // Turning it off is refused for a required role (password and code right).
            f.t.clock.advance(30)
            let off = try await client.execute(uri: "/account/two-factor/disable", method: .post,
                                               headers: [.contentType: "application/x-www-form-urlencoded", .cookie: owner],
                                               body: ByteBuffer(string: "csrf=\(csrf)&password=\(f.ownerPassword)&code=\(totp.code(at: f.t.clock.now))"))
            #expect(off.status == .badRequest && String(buffer: off.body).contains("cannot be turned off"))
            // An owner's own second factor is not reset from the Users page (the account page asks for password and code).
            let me = try #require(try f.t.database.user(email: "owner@example.org"))
            #expect(throws: ActionError.self) {
                try Administration(database: f.t.database, policies: f.t.collector.policies).resetTwoFactor(email: me.email, by: .user(me, sites: []))
            }
            // The operator's reset: sessions end, the next sign-in needs no code but leads to enrolment again.
            try Administration(database: f.t.database, policies: f.t.collector.policies).resetTwoFactor(email: "owner@example.org", by: .cli)
            #expect(try await client.page("/", owner).0 == .seeOther)
            let again = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            #expect(try await client.page("/", again).2[.location] == "/account/two-factor")
            #expect(try f.t.database.recentAuditEntries(limit: 10).map(\.action).contains("two_factor_reset"))
        }
    }
}
