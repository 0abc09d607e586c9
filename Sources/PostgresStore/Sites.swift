public import Storage

extension PostgresDatabase {
    /// Stores a site as another store holds it (same id, name, space-separated domains, policy,
    /// time zone and creation time), for the benchmark that writes the same events to both. A site
    /// of that id already here is left as it is.
    public func copySite(id: String, name: String, domains: [String], policy: String, calendar: SiteCalendar, createdAt: Int64) throws {
        try query("""
            INSERT INTO sites (id, name, domains, policy, created_at, timezone) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (id) DO NOTHING
            """, [.text(id), .text(name), .text(domains.joined(separator: " ")), .text(policy), .int(createdAt), .text(calendar.identifier)])
    }
}
