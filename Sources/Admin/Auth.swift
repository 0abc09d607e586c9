public import Foundation
public import HTTPTypes
public import Actions
import Privacy
public import Store
import Synchronization

/// Who is looking at the dashboard, and which sites they may see.
public struct Viewer: Sendable {
    public let user: User
    /// Sites the user may see: every site for owners and admins, the assigned ones otherwise.
    public let siteIDs: Set<String>
    public let csrf: String

    public var isStaffAdmin: Bool { actor.isStaffAdmin }
    /// The user as the actor of staff actions (``Actions/Actor/may(_:)`` decides what is allowed).
    public var actor: Actor { .user(user, sites: siteIDs) }

    public func may(see site: String) -> Bool { siteIDs.contains(site) }
}

/// Password login (argon2id), session tokens (only their BLAKE2b hash is stored), CSRF tokens,
/// device cookies and sign-in throttling (``LoginThrottle``).
public final class Authenticator: Sendable {
    let database: AppDatabase
    let now: @Sendable () -> Date
    public static let sessionLifetime: TimeInterval = 12 * 3600
    public static let deviceLifetime: TimeInterval = 365 * 86_400
    public let throttle: LoginThrottle
    let gate: HashingGate

    public init(database: AppDatabase, now: @escaping @Sendable () -> Date = { Date() }, throttle: LoginThrottle = LoginThrottle()) {
        self.database = database
        self.now = now
        self.throttle = throttle
        self.gate = HashingGate()
    }

    public enum LoginResult: Sendable, Equatable {
        /// Signed in: the session token, and the device token the browser keeps from now on.
        case success(token: String, device: String)
        case invalid
        case throttled(retryAfter: Int)
        /// Too many password checks at once.
        case busy
    }

    static func tokenHash(_ token: String) -> [UInt8] {
        Sodium.hash(Array(token.utf8))
    }

    /// `address` identifies the caller's resolved address for throttling (a keyed hash, never the
    /// address itself); `device` is the browser's device cookie, if it sent one.
    public func login(email: String, password: String, address: String, device: String?) async throws -> LoginResult {
        let t = now()
        let user = try database.user(email: email)
        // A device cookie counts only for the account it signed in to before.
        var knownDevice: String?
        if let device, device.utf8.count == 64, let id = user?.id,
           try database.loginDeviceUser(tokenHash: Self.tokenHash(device)) == id {
            knownDevice = Hex.encode(Self.tokenHash(device))
        }
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
        throttle.settle(attempt, succeeded: true)
        let token = Hex.encode(Sodium.randomBytes(32))
        let ms = Int64(t.timeIntervalSince1970 * 1000)
        try database.insertWebSession(tokenHash: Self.tokenHash(token), user: id, csrf: Hex.encode(Sodium.randomBytes(16)),
                                      createdAt: ms, expiresAt: ms + Int64(Self.sessionLifetime * 1000))
        let deviceToken = knownDevice != nil ? device! : Hex.encode(Sodium.randomBytes(32))
        try database.insertLoginDevice(tokenHash: Self.tokenHash(deviceToken), user: id, at: ms)
        return .success(token: token, device: deviceToken)
    }

    static let dummyHash = PasswordHasher.hash(Hex.encode(Sodium.randomBytes(16)))

    public func viewer(token: String) throws -> Viewer? {
        guard token.utf8.count == 64,
              let (userID, csrf) = try database.webSession(tokenHash: Self.tokenHash(token), now: Int64(now().timeIntervalSince1970 * 1000)),
              let user = try database.user(id: userID) else { return nil }
        let sites: Set<String> = user.role == .owner || user.role == .admin
            ? Set(try database.sites().map(\.id)) : Set(try database.siteIDs(user: userID))
        return Viewer(user: user, siteIDs: sites, csrf: csrf)
    }

    /// Whether the request carries the dashboard session of an owner or admin (who may read
    /// /health and /metrics).
    public func isOperator(_ headers: HTTPFields) -> Bool {
        guard let token = Self.cookie("candor_session", headers), let v = try? viewer(token: token) else { return false }
        return v.isStaffAdmin
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
