public import Foundation
import GRDB

public enum Role: String, Sendable, CaseIterable {
    case owner, admin, manager, viewer
}

public struct User: Sendable, Equatable {
    public var id: Int64?
    public var email: String
    public var passwordHash: String
    public var role: Role
    public var createdAt: Date

    public init(id: Int64? = nil, email: String, passwordHash: String, role: Role, createdAt: Date) {
        self.id = id
        self.email = email
        self.passwordHash = passwordHash
        self.role = role
        self.createdAt = createdAt
    }
}

extension User {
    init(row: Row) {
        id = row["id"]
        email = row["email"]
        passwordHash = row["password_hash"]
        role = Role(rawValue: row["role"]) ?? .viewer
        createdAt = Date(timeIntervalSince1970: Double(row["created_at"] as Int64) / 1000)
    }
}

extension WriteTransaction {
    @discardableResult
    public func addUser(_ user: User) throws -> User {
        var user = user
        try db.execute(sql: "INSERT INTO users (email, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                       arguments: [user.email, user.passwordHash, user.role.rawValue, Int64(user.createdAt.timeIntervalSince1970 * 1000)])
        user.id = db.lastInsertedRowID
        return user
    }

    public func user(email: String) throws -> User? {
        try Row.fetchOne(db, sql: "SELECT * FROM users WHERE email = ?", arguments: [email]).map(User.init(row:))
    }

    public func setUserSites(user: Int64, sites: [String]) throws {
        try db.execute(sql: "DELETE FROM user_sites WHERE user_id = ?", arguments: [user])
        for s in Set(sites).sorted() { try db.execute(sql: "INSERT INTO user_sites (user_id, site_id) VALUES (?, ?)", arguments: [user, s]) }
    }

    /// A new role ends the account's sessions: what it may see changed.
    public func setRole(user: Int64, role: Role) throws {
        try db.execute(sql: "UPDATE users SET role = ? WHERE id = ?", arguments: [role.rawValue, user])
        try db.execute(sql: "DELETE FROM web_sessions WHERE user_id = ?", arguments: [user])
    }

    /// Removes an account with its sessions, site assignments and known devices.
    public func deleteUser(id: Int64) throws {
        try db.execute(sql: "DELETE FROM users WHERE id = ?", arguments: [id])
    }

    /// A new password ends every session of the account.
    public func setPasswordHash(user: Int64, hash: String) throws {
        try db.execute(sql: "UPDATE users SET password_hash = ? WHERE id = ?", arguments: [hash, user])
        try db.execute(sql: "DELETE FROM web_sessions WHERE user_id = ?", arguments: [user])
    }

    public func ownerCount() throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM users WHERE role = 'owner'") ?? 0
    }
}

extension AppDatabase {
    @discardableResult
    public func addUser(_ user: User) throws -> User {
        try transaction { tx in try tx.addUser(user) }
    }

    public func user(email: String) throws -> User? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE email = ?", arguments: [email]).map(User.init(row:))
        }
    }

    public func userCount() throws -> Int {
        try writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM users") ?? 0 }
    }
}
