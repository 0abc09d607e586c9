public import Foundation
import Privacy
public import Store
import Storage

/// Read-only links to a site's view (always k-anonymised where they are read).
extension Administration {
    /// At most this many fixed filters (as many as a restricted reader may combine).
    public static let sharedLinkFilterLimit = 3

    /// Creates a link to the site's view, limited to `filters`, with an optional password and
    /// expiry; returns the link and its token (shown once: only its hash is stored).
    public func shareSite(site: String, label: String, filters: [(Store.Dimension, String)], password: String?, expiresInDays: Int?,
                          by actor: Actor) throws -> (link: SharedLink, token: String) {
        try require(actor, .configure(site: site))
        let label = label.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(label.count) else { throw ActionError.invalid("A shared link needs a label of 1–100 characters.") }
        guard filters.count <= Self.sharedLinkFilterLimit else { throw ActionError.invalid("A shared link fixes at most \(Self.sharedLinkFilterLimit) filters.") }
        guard filters.allSatisfy({ !$0.1.isEmpty && $0.1.count <= 500 && !$0.1.contains("\t") && !$0.1.contains("\n") }),
              Set(filters.map { $0.0 }).count == filters.count else {
            throw ActionError.invalid("Each fixed filter names one dimension once, with a value of 1–500 characters.")
        }
        if let days = expiresInDays, !(1...3660).contains(days) { throw ActionError.invalid("A link expires after 1 to 3,660 days, or never.") }
        if let password, !(8...200).contains(password.count) { throw ActionError.invalid("A link's password has 8 to 200 characters.") }
        let token = Hex.encode(Sodium.randomBytes(32))
        let link = SharedLink(id: Hex.encode(Sodium.randomBytes(8)), siteID: site, label: label, filters: filters,
                              passwordHash: password.map(PasswordHasher.hash), expiresAt: expiresInDays.map { nowMs + Int64($0) * 86_400_000 },
                              createdBy: actor.label, createdAt: nowMs)
        try database.transaction { tx in
            guard try tx.site(id: site) != nil else { throw ActionError.notFound("no site \(site.prefix(64))") }
            try tx.insertSharedLink(link, tokenHash: Self.sharedLinkHash(token))
            try audit.record(in: tx, actor: actor.label, action: "shared_link_created", site: site, detail: [
                "link": .string(link.id), "label": .string(label), "filters": .string(filters.map { "\($0.0.rawValue)=\($0.1)" }.joined(separator: "&")),
                "password": .string(password == nil ? "no" : "yes"), "expires_at": link.expiresAt.map { .string(ISO.string($0)) } ?? .string("never"),
            ])
        }
        return (link, token)
    }

    /// Revokes a link of the site: it answers 404 from now on.
    public func revokeSharedLink(site: String, id: String, by actor: Actor) throws {
        try require(actor, .configure(site: site))
        try database.transaction { tx in
            guard let link = try tx.deleteSharedLink(site: site, id: id) else { throw ActionError.notFound("no such link") }
            try audit.record(in: tx, actor: actor.label, action: "shared_link_revoked", site: site,
                             detail: ["link": .string(link.id), "label": .string(link.label)])
        }
    }

    /// What is stored of a link's token.
    public static func sharedLinkHash(_ token: String) -> [UInt8] { Sodium.hash(Array(token.utf8)) }
}
