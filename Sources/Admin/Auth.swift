public import Foundation
public import HTTPTypes
public import Actions
public import Privacy
public import Store
import Synchronization
public import TwoFactor

/// Who is looking at the dashboard, and which sites they may see.
public struct Viewer: Sendable {
    public let user: User
    /// Sites the user may see: every site for owners and admins, the assigned ones otherwise.
    public let siteIDs: Set<String>
    public let csrf: String
    /// The session's id as its owner's session list names it (its token's hash, hex).
    public let sessionID: String
    /// The user's role must sign in with a second factor and the user has none yet: every page
    /// but enrolment and sign-out leads to enrolment.
    public let mustEnrolTwoFactor: Bool

    public var isStaffAdmin: Bool { actor.isStaffAdmin }
    /// The user as the actor of staff actions (``Actions/Actor/may(_:)`` decides what is allowed).
    public var actor: Actor { .user(user, sites: siteIDs) }

    public func may(see site: String) -> Bool { siteIDs.contains(site) }
}

/// Password login (argon2id), the second factor (TOTP or a recovery code), session tokens (only
/// their BLAKE2b hash is stored), CSRF tokens, device cookies and sign-in throttling
/// (``LoginThrottle``: a wrong code counts as a wrong password does).
public final class Authenticator: Sendable {
    let database: AppDatabase
    let now: @Sendable () -> Date
    public static let sessionLifetime: TimeInterval = 12 * 3600
    public static let deviceLifetime: TimeInterval = 365 * 86_400
    /// How long the step between a right password and its code may take.
    public static let challengeLifetime: TimeInterval = 5 * 60
    /// Wrong codes one challenge allows before the password must be given again.
    public static let challengeAttempts = 5
    /// Wrong authenticator codes an account may get in a day (whatever the challenges and
    /// addresses); beyond, codes are refused until the day is over and only recovery codes sign in.
    public static let dailyWrongCodes = 20
    public let throttle: LoginThrottle
    let gate: HashingGate
    /// Seals TOTP secrets (the install's secret key); nil: second factors cannot be set up or checked.
    let box: SecretBox?
    /// A signed-in browser's label in its owner's session list ("Chrome on Linux") from its User-Agent.
    let deviceLabel: @Sendable (String) -> String
    let audit: AuditLog

    public init(database: AppDatabase, box: SecretBox? = nil, now: @escaping @Sendable () -> Date = { Date() },
                throttle: LoginThrottle = LoginThrottle(), deviceLabel: @escaping @Sendable (String) -> String = { _ in "" }) {
        self.database = database
        self.now = now
        self.throttle = throttle
        self.gate = HashingGate()
        self.box = box
        self.deviceLabel = deviceLabel
        self.audit = AuditLog(database: database, now: now)
    }

    public enum LoginResult: Sendable, Equatable {
        /// Signed in: the session token, and the device token the browser keeps from now on.
        case success(token: String, device: String)
        case invalid
        case throttled(retryAfter: Int)
        /// Too many password checks at once.
        case busy
        /// The password was right; the code is due (the challenge token goes in a cookie).
        case secondFactor(challenge: String)
        /// The challenge expired, was used, or met too many wrong codes: the password again.
        case challengeEnded
        /// The account has a second factor this server cannot check (its secret key is missing).
        case unavailable
        /// Too many wrong authenticator codes today: only a recovery code signs in until `until` (ms).
        case codesLocked(until: Int64)
    }

    var nowMs: Int64 { Int64(now().timeIntervalSince1970 * 1000) }

    static func tokenHash(_ token: String) -> [UInt8] {
        Sodium.hash(Array(token.utf8))
    }

    /// `address` identifies the caller's resolved address for throttling (a keyed hash, never the
    /// address itself); `device` is the browser's device cookie, if it sent one.
    public func login(email: String, password: String, address: String, device: String?, userAgent: String = "") async throws -> LoginResult {
        let t = now()
        let user = try database.user(email: email)
        let knownDevice = try user?.id.flatMap { try self.knownDevice(device, of: $0) }
        // The attempt counts as a failure from here on, so concurrent attempts cannot all pass the
        // check before the first one fails; a right password takes it back.
        let attempt: LoginThrottle.Attempt
        switch throttle.begin(address: address, account: user?.id, device: knownDevice, now: t) {
        case .failure(let wait): return .throttled(retryAfter: wait.seconds)
        case .success(let a): attempt = a
        }
        // Hash even for unknown accounts, so timing does not tell which e-mails exist.
        let stored = user?.passwordHash ?? Self.dummyHash
        guard let verified = await gate.run({ PasswordHasher.verify(password, hash: stored) }) else {
            throttle.settle(attempt, succeeded: false, checked: false)
            return .busy
        }
        guard verified, let user, let id = user.id else { return .invalid }
        if try database.twoFactor(user: id)?.isOn == true {
            // The password's attempt is taken back without clearing the account's failures: only a
            // whole sign-in clears them, so wrong codes keep counting across challenges.
            throttle.settle(attempt, succeeded: false, checked: false)
            let challenge = Hex.encode(Sodium.randomBytes(32))
            try database.insertLoginChallenge(tokenHash: Self.tokenHash(challenge), user: id, at: nowMs,
                                              expiresAt: nowMs + Int64(Self.challengeLifetime * 1000))
            return .secondFactor(challenge: challenge)
        }
        throttle.settle(attempt, succeeded: true)
        return try startSession(user: id, knownDevice: knownDevice != nil ? device : nil, userAgent: userAgent)
    }

    /// The second step of a sign-in: a code from the authenticator app (6 digits, each good once)
    /// or a recovery code (each good once), for the challenge a right password opened.
    public func secondFactor(challenge: String, code: String, address: String, device: String?, userAgent: String) async throws -> LoginResult {
        let hash = Self.tokenHash(challenge)
        guard challenge.utf8.count == 64, let id = try database.loginChallenge(tokenHash: hash, now: nowMs),
              let user = try database.user(id: id) else { return .challengeEnded }
        let knownDevice = try self.knownDevice(device, of: id)
        let attempt: LoginThrottle.Attempt
        switch throttle.begin(address: address, account: id, device: knownDevice, now: now()) {
        case .failure(let wait): return .throttled(retryAfter: wait.seconds)
        case .success(let a): attempt = a
        }
        guard let record = try database.twoFactor(user: id), record.isOn else {
            throttle.settle(attempt, succeeded: false, checked: false)
            _ = try database.endLoginChallenge(tokenHash: hash)
            return .challengeEnded
        }
        let typed = code.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "")
        let accepted: Bool
        if typed.utf8.count == 6, typed.utf8.allSatisfy({ (48...57).contains($0) }) {
            guard let box, let secret = try? box.open(record.sealedSecret) else {
                throttle.settle(attempt, succeeded: false, checked: false)
                return .unavailable
            }
            let day: Int64 = 86_400_000
            if record.wrongCodes >= Self.dailyWrongCodes, record.wrongSince > nowMs - day {
                throttle.settle(attempt, succeeded: false, checked: false)
                return .codesLocked(until: record.wrongSince + day)
            }
            if let step = TOTP(secret: secret).match(typed, at: now(), after: record.lastStep) {
                accepted = try database.transaction { tx in try tx.useTwoFactorStep(user: id, step: step) }
            } else {
                accepted = false
            }
            if !accepted {
                let count = try database.transaction { tx in try tx.countWrongCode(user: id, at: nowMs, window: day) }
                if count == Self.dailyWrongCodes {
                    try audit.record(actor: "user:\(user.email)", action: "two_factor_codes_locked", detail: ["wrong_codes": .int(Int64(count))])
                }
            }
        } else if let normalized = RecoveryCodes.normalize(typed) {
            accepted = try database.transaction { tx in
                guard try tx.useRecoveryCode(user: id, hash: RecoveryCodes.hash(normalized), at: nowMs) else { return false }
                let left = try tx.twoFactor(user: id)?.unusedRecoveryCodes ?? 0
                try audit.record(in: tx, actor: "user:\(user.email)", action: "recovery_code_used", detail: ["left": .int(Int64(left))])
                return true
            }
        } else {
            accepted = false
        }
        guard accepted else {
            return try database.failLoginChallenge(tokenHash: hash, limit: Self.challengeAttempts) ? .invalid : .challengeEnded
        }
        throttle.settle(attempt, succeeded: true)
        try database.transaction { tx in try tx.clearWrongCodes(user: id) }
        // One challenge, one session: of two requests racing with right codes, one ends it.
        guard try database.endLoginChallenge(tokenHash: hash) else { return .challengeEnded }
        return try startSession(user: id, knownDevice: knownDevice != nil ? device : nil, userAgent: userAgent)
    }

    /// The throttle's key of a device cookie, when the browser signed in to this account before
    /// (a device cookie counts only for the account it signed in to).
    func knownDevice(_ device: String?, of user: Int64) throws -> String? {
        guard let device, device.utf8.count == 64, try database.loginDeviceUser(tokenHash: Self.tokenHash(device)) == user else { return nil }
        return Hex.encode(Self.tokenHash(device))
    }

    /// A new session, and the device cookie the browser keeps (its own when it had one of this account).
    func startSession(user id: Int64, knownDevice: String?, userAgent: String) throws -> LoginResult {
        let token = Hex.encode(Sodium.randomBytes(32))
        let ms = nowMs
        try database.insertWebSession(tokenHash: Self.tokenHash(token), user: id, csrf: Hex.encode(Sodium.randomBytes(16)),
                                      createdAt: ms, expiresAt: ms + Int64(Self.sessionLifetime * 1000),
                                      device: String(deviceLabel(String(userAgent.prefix(512))).prefix(80)))
        let deviceToken = knownDevice ?? Hex.encode(Sodium.randomBytes(32))
        try database.insertLoginDevice(tokenHash: Self.tokenHash(deviceToken), user: id, at: ms)
        return .success(token: token, device: deviceToken)
    }

    // MARK: Enrolment

    public enum EnrolmentProblem: Error, Equatable {
        /// No secret key: secrets cannot be sealed.
        case unavailable
        case alreadyOn
        case wrongCode
    }

    /// A new secret for the user to scan (sealed and stored until confirmed or replaced).
    public func beginEnrolment(user: User) throws -> TOTP {
        guard let box, let id = user.id else { throw EnrolmentProblem.unavailable }
        try box.claim(database)
        let totp = TOTP(secret: Sodium.randomBytes(20))
        guard try database.transaction({ tx in try tx.beginTwoFactor(user: id, sealedSecret: box.seal(totp.secret), at: nowMs) }) else {
            throw EnrolmentProblem.alreadyOn
        }
        return totp
    }

    /// The enrolment under way (its secret), nil when none or the second factor is on.
    public func pendingEnrolment(user: User) throws -> TOTP? {
        guard let box, let id = user.id, let record = try database.twoFactor(user: id), !record.isOn,
              let secret = try? box.open(record.sealedSecret) else { return nil }
        return TOTP(secret: secret)
    }

    /// Turns the second factor on when `code` is the pending secret's; returns the recovery codes (shown once).
    public func confirmEnrolment(user: User, code: String) throws -> [String] {
        guard let id = user.id, let totp = try pendingEnrolment(user: user) else { throw EnrolmentProblem.unavailable }
        guard let step = totp.match(code.replacingOccurrences(of: " ", with: ""), at: now(), after: 0) else { throw EnrolmentProblem.wrongCode }
        let codes = RecoveryCodes.generate()
        try database.transaction { tx in
            guard try tx.confirmTwoFactor(user: id, step: step, at: nowMs, recoveryHashes: codes.map { RecoveryCodes.hash(RecoveryCodes.normalize($0)!) }) else {
                throw EnrolmentProblem.alreadyOn
            }
            try audit.record(in: tx, actor: "user:\(user.email)", action: "two_factor_enabled")
        }
        return codes
    }

    public enum Confirmation: Sendable, Equatable {
        case confirmed, wrong, throttled(retryAfter: Int), busy
    }

    /// A signed-in user's password and current code, before turning the second factor off or
    /// making new recovery codes: checked under the sign-in throttle (a stolen session does not
    /// get unlimited guesses) and the password-hashing gate.
    public func confirm(user: User, password: String, code: String, address: String) async throws -> Confirmation {
        let attempt: LoginThrottle.Attempt
        switch throttle.begin(address: address, account: user.id, device: nil, now: now()) {
        case .failure(let wait): return .throttled(retryAfter: wait.seconds)
        case .success(let a): attempt = a
        }
        let hash = user.passwordHash
        guard let right = await gate.run({ PasswordHasher.verify(password, hash: hash) }) else {
            throttle.settle(attempt, succeeded: false, checked: false)
            return .busy
        }
        guard right, try checkCode(user: user, code: code) else { return .wrong }
        throttle.settle(attempt, succeeded: true)
        return .confirmed
    }

    /// Whether `code` is the user's current authenticator code (accepted once, as at sign-in).
    public func checkCode(user: User, code: String) throws -> Bool {
        guard let box, let id = user.id, let record = try database.twoFactor(user: id), record.isOn,
              let secret = try? box.open(record.sealedSecret),
              let step = TOTP(secret: secret).match(code.replacingOccurrences(of: " ", with: ""), at: now(), after: record.lastStep) else { return false }
        return try database.transaction { tx in try tx.useTwoFactorStep(user: id, step: step) }
    }

    /// New recovery codes replacing the unused ones (the caller checked password and code); shown once.
    public func newRecoveryCodes(user: User) throws -> [String] {
        guard let id = user.id else { return [] }
        let codes = RecoveryCodes.generate()
        try database.transaction { tx in
            try tx.replaceRecoveryCodes(user: id, hashes: codes.map { RecoveryCodes.hash(RecoveryCodes.normalize($0)!) })
            try audit.record(in: tx, actor: "user:\(user.email)", action: "recovery_codes_replaced")
        }
        return codes
    }

    /// Turns the user's own second factor off (the caller checked password, code and role).
    public func turnOff(user: User) throws {
        guard let id = user.id else { return }
        try database.transaction { tx in
            guard try tx.removeTwoFactor(user: id) else { return }
            try audit.record(in: tx, actor: "user:\(user.email)", action: "two_factor_disabled")
        }
    }

    /// Ends one of the user's sessions (`id` from their session list), or every other one
    /// (`id` "others"); returns how many ended.
    public func revokeSessions(user: User, id: String, current: String) throws -> Int {
        guard let uid = user.id else { return 0 }
        return try database.transaction { tx in
            let ended = id == "others" ? try tx.deleteWebSessions(user: uid, except: Hex.decode(current))
                : id == current ? 0 : try tx.revokeWebSession(user: uid, id: id) ? 1 : 0
            if ended > 0 { try audit.record(in: tx, actor: "user:\(user.email)", action: "sessions_revoked", detail: ["count": .int(Int64(ended))]) }
            return ended
        }
    }

    static let dummyHash = PasswordHasher.hash(Hex.encode(Sodium.randomBytes(16)))

    public func viewer(token: String) throws -> Viewer? {
        let hash = Self.tokenHash(token)
        let t = nowMs
        guard token.utf8.count == 64, let session = try database.webSession(tokenHash: hash, now: t),
              let user = try database.user(id: session.user) else { return nil }
        if t - session.lastSeen >= 60_000 { try database.touchWebSession(tokenHash: hash, at: t) }
        let sites = try database.visibleSiteIDs(user: user)
        let mustEnrol = try database.twoFactorRoles().contains(user.role) && database.twoFactor(user: session.user)?.isOn != true
        return Viewer(user: user, siteIDs: sites, csrf: session.csrf, sessionID: Hex.encode(hash), mustEnrolTwoFactor: mustEnrol)
    }

    /// Whether the request carries the dashboard session of an owner or admin (who may read
    /// /health and /metrics).
    public func isOperator(_ headers: HTTPFields) -> Bool {
        guard let token = Self.cookie("candor_session", headers), let v = try? viewer(token: token) else { return false }
        return v.isStaffAdmin && !v.mustEnrolTwoFactor
    }

    /// A cookie's value from the request's Cookie headers.
    static func cookie(_ name: String, _ headers: HTTPFields) -> String? {
        headers[values: .cookie].lazy.flatMap { $0.split(separator: ";") }.map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }

    public func logout(token: String) throws {
        try database.deleteWebSession(tokenHash: Self.tokenHash(token))
    }
}
