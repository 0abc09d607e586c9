public import Foundation
import Privacy
public import Store

/// First-run set-up of an install: the owner account.
public enum Bootstrap {
    /// Creates the owner account if the install has no user yet. Returns the generated password
    /// (to print once; only its argon2id hash is stored), or nil if users already exist.
    public static func ensureOwner(database: AppDatabase, email: String, now: Date = Date()) throws -> String? {
        guard try database.userCount() == 0 else { return nil }
        let password = PasswordHasher.randomPassword()
        try database.addUser(User(email: email, passwordHash: PasswordHasher.hash(password), role: .owner, createdAt: now))
        return password
    }

    /// A new random site id: 12 characters of letters and digits.
    public static func newSiteID() -> String {
        PasswordHasher.randomPassword(length: 12).lowercased().filter { $0.isLetter || $0.isNumber }
    }
}
