public import Foundation
import Privacy
public import Store
import Synchronization

/// Who is looking at the dashboard, and which sites they may see.
public struct Viewer: Sendable {
    public let user: User
    /// Sites the user may see: every site for owners and admins, the assigned ones otherwise.
    public let siteIDs: Set<String>
    public let csrf: String

    /// Owners and admins see exact breakdowns; managers and viewers get small groups folded (k-anonymity).
    public var suppressesSmallGroups: Bool { user.role == .manager || user.role == .viewer }
    public var isStaffAdmin: Bool { user.role == .owner || user.role == .admin }

    public func may(see site: String) -> Bool { siteIDs.contains(site) }
}

/// Password login (argon2id), session tokens (only their BLAKE2b hash is stored), CSRF tokens and
/// login throttling (per e-mail and per client: 5 failures in 15 minutes, then 429 until they age out).
public final class Authenticator: Sendable {
    let database: AppDatabase
    let now: @Sendable () -> Date
    public static let sessionLifetime: TimeInterval = 12 * 3600
    static let window: TimeInterval = 15 * 60
    static let maxFailures = 5
    private let failures = Mutex<[String: [Date]]>([:])

    public init(database: AppDatabase, now: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database
        self.now = now
    }

    public enum LoginResult: Sendable, Equatable {
        case success(token: String)
        case invalid
        case throttled(retryAfter: Int)
    }

    static func tokenHash(_ token: String) -> [UInt8] {
        Sodium.hash(Array(token.utf8))
    }

    /// `clientKey` identifies the caller for throttling (a hash of the address, never the address itself).
    public func login(email: String, password: String, clientKey: String) throws -> LoginResult {
        let t = now()
        let keys = ["email:" + email.lowercased(), "client:" + clientKey]
        let recent = failures.withLock { f -> [Date] in
            for k in keys { f[k] = f[k, default: []].filter { t.timeIntervalSince($0) < Self.window } }
            return keys.flatMap { f[$0] ?? [] }
        }
        if keys.contains(where: { k in failures.withLock { $0[k]?.count ?? 0 } >= Self.maxFailures }) {
            let oldest = recent.min() ?? t
            return .throttled(retryAfter: max(1, Int(Self.window - t.timeIntervalSince(oldest))))
        }
        // Hash even for unknown accounts, so timing does not tell which e-mails exist.
        let user = try database.user(email: email)
        let ok = PasswordHasher.verify(password, hash: user?.passwordHash ?? Self.dummyHash) && user != nil
        guard ok, let user, let id = user.id else {
            failures.withLock { f in for k in keys { f[k, default: []].append(t) } }
            return .invalid
        }
        failures.withLock { $0["email:" + email.lowercased()] = nil }
        let token = Hex.encode(Sodium.randomBytes(32))
        let ms = Int64(t.timeIntervalSince1970 * 1000)
        try database.insertWebSession(tokenHash: Self.tokenHash(token), user: id, csrf: Hex.encode(Sodium.randomBytes(16)),
                                      createdAt: ms, expiresAt: ms + Int64(Self.sessionLifetime * 1000))
        return .success(token: token)
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

    public func logout(token: String) throws {
        try database.deleteWebSession(tokenHash: Self.tokenHash(token))
    }
}
