public import Foundation
import GRDB

/// A user's second factor: the TOTP secret sealed under the install's secret key (SecretBox),
/// confirmed once the user typed a code from it, and the last step a code was accepted for (a
/// code is good once).
public struct TwoFactorRecord: Sendable, Equatable {
    public var sealedSecret: Data
    public var confirmedAt: Int64?
    public var lastStep: Int64
    public var unusedRecoveryCodes: Int
    /// Wrong authenticator codes since `wrongSince` (ms).
    public var wrongCodes: Int = 0
    public var wrongSince: Int64 = 0
    public var isOn: Bool { confirmedAt != nil }
}

/// One signed-in browser of an account, as its owner sees it in the account page.
public struct WebSessionInfo: Sendable, Equatable {
    /// The session's token hash, hex: names it in a revoke form (the token itself is never stored).
    public var id: String
    public var device: String
    public var createdAt: Int64
    public var lastSeenAt: Int64
    public var expiresAt: Int64
}

/// Install-wide settings the dashboard and the command line change.
public enum InstallSetting: String, Sendable {
    /// Comma-separated roles that must sign in with a second factor ("" when none).
    case twoFactorRoles = "two_factor_roles"
}

extension WriteTransaction {
    public func installSetting(_ setting: InstallSetting) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM install_settings WHERE name = ?", arguments: [setting.rawValue])
    }

    public func setInstallSetting(_ setting: InstallSetting, _ value: String) throws {
        try db.execute(sql: """
            INSERT INTO install_settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value
            """, arguments: [setting.rawValue, value])
    }

    public func twoFactor(user: Int64) throws -> TwoFactorRecord? {
        try AppDatabase.twoFactor(db, user: user)
    }

    /// Starts (or restarts) an enrolment with a new sealed secret; refused (false) when the
    /// second factor is on already.
    public func beginTwoFactor(user: Int64, sealedSecret: Data, at: Int64) throws -> Bool {
        try db.execute(sql: """
            INSERT INTO two_factor (user_id, secret, created_at, confirmed_at, last_step) VALUES (?, ?, ?, NULL, 0)
            ON CONFLICT(user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at
            WHERE two_factor.confirmed_at IS NULL
            """, arguments: [user, sealedSecret, at])
        return db.changesCount == 1
    }

    /// Turns the second factor on (the user typed a code of `step`) with new recovery codes;
    /// false when it was on already or no enrolment was begun.
    public func confirmTwoFactor(user: Int64, step: Int64, at: Int64, recoveryHashes: [[UInt8]]) throws -> Bool {
        try db.execute(sql: "UPDATE two_factor SET confirmed_at = ?, last_step = ? WHERE user_id = ? AND confirmed_at IS NULL",
                       arguments: [at, step, user])
        guard db.changesCount == 1 else { return false }
        try replaceRecoveryCodes(user: user, hashes: recoveryHashes)
        return true
    }

    public func replaceRecoveryCodes(user: Int64, hashes: [[UInt8]]) throws {
        try db.execute(sql: "DELETE FROM recovery_codes WHERE user_id = ?", arguments: [user])
        for h in hashes {
            try db.execute(sql: "INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES (?, ?, NULL)", arguments: [user, Data(h)])
        }
    }

    /// Removes the second factor and its recovery codes (turned off, or reset by an operator),
    /// or an enrolment under way. True when a second factor was on.
    public func removeTwoFactor(user: Int64) throws -> Bool {
        let wasOn = try twoFactor(user: user)?.isOn == true
        try db.execute(sql: "DELETE FROM recovery_codes WHERE user_id = ?", arguments: [user])
        try db.execute(sql: "DELETE FROM two_factor WHERE user_id = ?", arguments: [user])
        return wasOn
    }

    /// Records that a code of `step` was used: true only for a step later than the last one
    /// used (of two sign-ins racing with one code, one wins).
    public func useTwoFactorStep(user: Int64, step: Int64) throws -> Bool {
        try db.execute(sql: "UPDATE two_factor SET last_step = ? WHERE user_id = ? AND last_step < ? AND confirmed_at IS NOT NULL",
                       arguments: [step, user, step])
        return db.changesCount == 1
    }

    /// Counts a wrong authenticator code: the count restarts when the last one began more than
    /// `window` ms ago. Returns the count.
    public func countWrongCode(user: Int64, at: Int64, window: Int64) throws -> Int {
        try db.execute(sql: """
            UPDATE two_factor SET wrong_codes = CASE WHEN wrong_since <= ? THEN 1 ELSE wrong_codes + 1 END,
                                  wrong_since = CASE WHEN wrong_since <= ? THEN ? ELSE wrong_since END
            WHERE user_id = ?
            """, arguments: [at - window, at - window, at, user])
        return try Int.fetchOne(db, sql: "SELECT wrong_codes FROM two_factor WHERE user_id = ?", arguments: [user]) ?? 0
    }

    /// A right code or a new sign-in: the wrong ones start over.
    public func clearWrongCodes(user: Int64) throws {
        try db.execute(sql: "UPDATE two_factor SET wrong_codes = 0, wrong_since = 0 WHERE user_id = ?", arguments: [user])
    }

    /// Spends a recovery code: true when it was the user's and unused.
    public func useRecoveryCode(user: Int64, hash: [UInt8], at: Int64) throws -> Bool {
        try db.execute(sql: "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
                       arguments: [at, user, Data(hash)])
        return db.changesCount == 1
    }

    /// Ends the account's sessions (but `tokenHash`'s); returns how many ended.
    @discardableResult
    public func deleteWebSessions(user: Int64, except tokenHash: [UInt8]? = nil) throws -> Int {
        try db.execute(sql: "DELETE FROM web_sessions WHERE user_id = ? AND token_hash IS NOT ?",
                       arguments: [user, tokenHash.map { Data($0) }])
        return db.changesCount
    }

    /// Ends one of the user's sessions, named by ``WebSessionInfo/id``; false when it is not theirs or gone.
    public func revokeWebSession(user: Int64, id: String) throws -> Bool {
        let digits = Array(id.utf8)
        guard digits.count == 64, digits.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return false }
        let hash = stride(from: 0, to: 64, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
        try db.execute(sql: "DELETE FROM web_sessions WHERE user_id = ? AND token_hash = ?", arguments: [user, Data(hash)])
        return db.changesCount == 1
    }
}

extension AppDatabase {
    static func twoFactor(_ db: Database, user: Int64) throws -> TwoFactorRecord? {
        guard let row = try Row.fetchOne(db, sql: "SELECT secret, confirmed_at, last_step, wrong_codes, wrong_since FROM two_factor WHERE user_id = ?",
                                         arguments: [user]) else {
            return nil
        }
        let unused = try Int.fetchOne(db, sql: "SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", arguments: [user]) ?? 0
        return TwoFactorRecord(sealedSecret: row[0], confirmedAt: row[1], lastStep: row[2], unusedRecoveryCodes: unused,
                               wrongCodes: row[3], wrongSince: row[4])
    }

    public func twoFactor(user: Int64) throws -> TwoFactorRecord? {
        try writer.read { db in try Self.twoFactor(db, user: user) }
    }

    /// The roles that must sign in with a second factor.
    public func twoFactorRoles() throws -> Set<Role> {
        Role.set(parsing: try installSetting(.twoFactorRoles) ?? "") ?? []
    }

    public func installSetting(_ setting: InstallSetting) throws -> String? {
        try writer.read { db in try String.fetchOne(db, sql: "SELECT value FROM install_settings WHERE name = ?", arguments: [setting.rawValue]) }
    }

    // MARK: Sign-in challenges (password right, second factor to come)

    /// Stores a challenge (only its token's hash); expired ones go.
    public func insertLoginChallenge(tokenHash: [UInt8], user: Int64, at: Int64, expiresAt: Int64) throws {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM login_challenges WHERE expires_at <= ?", arguments: [at])
            try db.execute(sql: "INSERT INTO login_challenges (token_hash, user_id, expires_at, failures) VALUES (?, ?, ?, 0)",
                           arguments: [Data(tokenHash), user, expiresAt])
        }
    }

    /// The user of a live challenge.
    public func loginChallenge(tokenHash: [UInt8], now: Int64) throws -> Int64? {
        try writer.read { db in
            try Int64.fetchOne(db, sql: "SELECT user_id FROM login_challenges WHERE token_hash = ? AND expires_at > ?",
                               arguments: [Data(tokenHash), now])
        }
    }

    /// Counts a wrong code against a challenge; at `limit` failures the challenge is gone (the
    /// password must be given again). Returns whether it is still usable.
    public func failLoginChallenge(tokenHash: [UInt8], limit: Int) throws -> Bool {
        try writer.write { db in
            try db.execute(sql: "UPDATE login_challenges SET failures = failures + 1 WHERE token_hash = ?", arguments: [Data(tokenHash)])
            try db.execute(sql: "DELETE FROM login_challenges WHERE token_hash = ? AND failures >= ?", arguments: [Data(tokenHash), limit])
            return db.changesCount == 0
        }
    }

    /// Ends a challenge; true for the one caller that ended it (a challenge yields one session).
    public func endLoginChallenge(tokenHash: [UInt8]) throws -> Bool {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM login_challenges WHERE token_hash = ?", arguments: [Data(tokenHash)])
            return db.changesCount == 1
        }
    }

    // MARK: Sessions as their owner sees them

    public func webSessions(user: Int64, now: Int64) throws -> [WebSessionInfo] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT token_hash, device, created_at, last_seen_at, expires_at FROM web_sessions
                WHERE user_id = ? AND expires_at > ? ORDER BY last_seen_at DESC, created_at DESC
                """, arguments: [user, now]).map { row in
                WebSessionInfo(id: (row["token_hash"] as Data).map { String(format: "%02x", $0) }.joined(), device: row["device"], createdAt: row["created_at"],
                               lastSeenAt: max(row["last_seen_at"] as Int64, row["created_at"] as Int64), expiresAt: row["expires_at"])
            }
        }
    }

    /// Notes when a session was used (callers do so at most once a minute).
    public func touchWebSession(tokenHash: [UInt8], at: Int64) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE web_sessions SET last_seen_at = ? WHERE token_hash = ?", arguments: [at, Data(tokenHash)])
        }
    }
}

extension Role {
    /// Roles from a comma-separated list ("owner,admin"; "" or "none" for none); nil when a name is not a role.
    public static func set(parsing text: String) -> Set<Role>? {
        var out: Set<Role> = []
        for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty && name != "none" {
            guard let r = Role(rawValue: name) else { return nil }
            out.insert(r)
        }
        return out
    }

    /// The list as stored and printed, in the roles' order.
    public static func list(_ roles: Set<Role>) -> String {
        Role.allCases.filter(roles.contains).map(\.rawValue).joined(separator: ",")
    }
}
