import Actions
import Foundation
import Hummingbird
import HTTPTypes
import Privacy
import Store
import Storage
import TwoFactor

/// The second factor in the dashboard: the code step of a sign-in, enrolment (QR code, recovery
/// codes), turning it off, new recovery codes, and the account's signed-in browsers.
extension DashboardRoutes {
    static var challengeCookie: String { "candor_challenge" }

    func addTwoFactorRoutes(to router: Router<Context>) {
        router.get("/login/code") { request, _ in
            self.cookie(Self.challengeCookie, request) == nil ? Response(status: .seeOther, headers: [.location: "/login"]) : self.codePage(error: nil)
        }
        router.post("/login/code") { request, context in try await self.signInWithCode(request, context) }
        router.get("/account/two-factor") { request, _ in try await self.withViewer(request) { v in try self.enrolment(v, error: nil) } }
        router.post("/account/two-factor/:action") { request, context in
            try await self.withViewer(request) { v in
                try await self.changeTwoFactor(request, v, context.parameters.get("action") ?? "", address: self.addressKey(request, context))
            }
        }
        router.post("/account/sessions/revoke") { request, _ in try await self.withViewer(request) { v in try await self.revokeSession(request, v) } }
    }

    /// Paths a signed-in user who must enrol first may still reach.
    static func reachableBeforeEnrolment(_ path: String) -> Bool {
        ["/account/two-factor", "/account/two-factor/enable", "/logout"].contains(path)
    }

    // MARK: Sign-in, second step

    func codePage(error: String?, status: HTTPResponse.Status = .ok) -> Response {
        var c: [String: Any] = ["title": "Two-factor sign-in"]
        if let error { c["error"] = error }
        return html("code", c, status: status)
    }

    func signInWithCode(_ request: Request, _ context: Context) async throws -> Response {
        let f = try await form(request)
        if let origin = request.headers[.origin], let host = request.head.authority, !origin.hasSuffix("//" + host) {
            return codePage(error: "Sign-in must come from this site.", status: .forbidden)
        }
        guard let challenge = cookie(Self.challengeCookie, request) else { return Response(status: .seeOther, headers: [.location: "/login"]) }
        let result = try await auth.secondFactor(challenge: challenge, code: f["code"] ?? "", address: addressKey(request, context),
                                                 device: cookie("candor_device", request), userAgent: request.headers[.userAgent] ?? "")
        switch result {
        case .invalid:
            return codePage(error: "That code is not right (or was used already). Codes change every 30 seconds.", status: .unauthorized)
        case .codesLocked(let until):
            return codePage(error: "Too many wrong codes for this account today: codes are refused until \(ISO.string(until)). A recovery code still signs in.",
                            status: .tooManyRequests)
        case .challengeEnded:
            var r = loginPage(error: "Enter your password again: the sign-in expired or met too many wrong codes.", status: .unauthorized)
            r.headers.append(HTTPField(name: .setCookie, value: "\(Self.challengeCookie)=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0"))
            return r
        default:
            return signInResponse(result, page: codePage)
        }
    }

    // MARK: Enrolment

    /// The enrolment page: a QR code of a new (or the pending) secret, the secret for typing, and a
    /// form for the first code. Owners of a second factor are sent to their account page.
    func enrolment(_ v: Viewer, error: String?, status: HTTPResponse.Status = .ok) throws -> Response {
        if try database.twoFactor(user: v.user.id ?? -1)?.isOn == true { return Response(status: .seeOther, headers: [.location: "/account"]) }
        var c = base(v, title: "Two-factor sign-in")
        c["required"] = v.mustEnrolTwoFactor
        if let error { c["error"] = error }
        let totp: TOTP
        do { totp = try auth.pendingEnrolment(user: v.user) ?? auth.beginEnrolment(user: v.user) } catch {
            c["unavailable"] = true
            return html("twofactor", c, status: .serviceUnavailable)
        }
        let uri = totp.uri(issuer: "Candor", account: v.user.email)
        if let qr = QRCode.svg(uri) {
            c["qr"] = "data:image/svg+xml;base64," + Data(qr.svg.utf8).base64EncodedString()
            c["qrSize"] = qr.pixels
        }
        let key = Array(Base32.encode(totp.secret))
        c["secret"] = stride(from: 0, to: key.count, by: 4).map { String(key[$0..<min($0 + 4, key.count)]) }.joined(separator: " ")
        return html("twofactor", c, status: status)
    }

    func changeTwoFactor(_ request: Request, _ v: Viewer, _ action: String, address: String) async throws -> Response {
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        switch action {
        case "enable":
            do {
                let codes = try auth.confirmEnrolment(user: v.user, code: f["code"] ?? "")
                var c = base(v, title: "Two-factor sign-in is on")
                c["codes"] = codes
                return html("recovery", c)
            } catch Authenticator.EnrolmentProblem.wrongCode {
                return try enrolment(v, error: "That code is not right: type the 6 digits the app shows now.", status: .badRequest)
            } catch Authenticator.EnrolmentProblem.alreadyOn {
                return Response(status: .seeOther, headers: [.location: "/account"])
            }
        case "disable", "recovery-codes":
            switch try await auth.confirm(user: v.user, password: f["password"] ?? "", code: f["code"] ?? "", address: address) {
            case .confirmed: break
            case .wrong: return try account(v, message: "The password or the code is not right (a code is good once).", status: .badRequest)
            case .throttled(let wait):
                var r = try account(v, message: "Too many wrong attempts; try again in \(wait) seconds.", status: .tooManyRequests)
                r.headers[.retryAfter] = String(wait)
                return r
            case .busy: return try account(v, message: "Too many password checks at once; try again in a moment.", status: .serviceUnavailable)
            }
            if action == "recovery-codes" {
                var c = base(v, title: "New recovery codes")
                c["codes"] = try auth.newRecoveryCodes(user: v.user)
                return html("recovery", c)
            }
            guard try !database.twoFactorRoles().contains(v.user.role) else {
                return try account(v, message: "Your role (\(v.user.role.rawValue)) must sign in with a second factor: it cannot be turned off.",
                                   status: .badRequest)
            }
            try auth.turnOff(user: v.user)
            return try account(v, message: "Two-factor sign-in is off.")
        default:
            return notFound()
        }
    }

    func revokeSession(_ request: Request, _ v: Viewer) async throws -> Response {
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        let ended = try auth.revokeSessions(user: v.user, id: f["session"] ?? "", current: v.sessionID)
        return try account(v, message: ended == 0 ? "That session had ended already." : ended == 1 ? "The session ended." : "\(ended) sessions ended.")
    }
}
