import Foundation
public import Privacy
public import Store

/// A destination's settings or credential that cannot be used.
public struct DestinationSetupError: Error, CustomStringConvertible {
    public let description: String
}

/// Adds, changes and removes a site's destinations and replays its dead letters, for the CLI and
/// the dashboard alike: settings checked against the kind, the credential sealed (never stored
/// or shown in the clear), each change in the audit log.
public struct DestinationSetup: Sendable {
    let database: AppDatabase
    let box: SecretBox
    let audit: AuditLog

    public init(database: AppDatabase, box: SecretBox, audit: AuditLog) {
        self.database = database; self.box = box; self.audit = audit
    }

    var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Checks settings against the kind: known names only, required ones present, URLs http(s).
    public static func validate(kind: DestinationKind, settings: [String: String]) throws(DestinationSetupError) -> [String: String] {
        let known = Dictionary(uniqueKeysWithValues: kind.settings.map { ($0.name, $0.required) })
        var out: [String: String] = [:]
        for (name, raw) in settings {
            let value = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            guard known[name] != nil else {
                throw DestinationSetupError(description: "\(kind.rawValue) takes \(kind.settings.map(\.name).joined(separator: ", ")), not \(name.prefix(40))")
            }
            guard value.count <= 500, !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw DestinationSetupError(description: "\(name): at most 500 characters, no control characters")
            }
            if value.isEmpty { continue }
            if name == "url" || name == "base_url" {
                guard let u = URL(string: value), ["http", "https"].contains(u.scheme?.lowercased() ?? ""), u.host?.isEmpty == false else {
                    throw DestinationSetupError(description: "\(name) must be an http(s) URL")
                }
            }
            if name == "delay_seconds" {
                guard let n = Int(value), (0...86_400).contains(n) else { throw DestinationSetupError(description: "delay_seconds is 0–86400") }
            }
            if ["pixel_id", "conversion_id"].contains(name) {
                guard value.allSatisfy(\.isNumber) else { throw DestinationSetupError(description: "\(name) is digits") }
            }
            out[name] = value
        }
        for (name, required) in known where required && out[name] == nil {
            throw DestinationSetupError(description: "\(kind.rawValue) needs \(name)")
        }
        if kind.wantsContact {
            guard out.keys.contains(where: { $0.hasPrefix("field_") }) else {
                throw DestinationSetupError(description: "map at least one field (\(CRM.facts.map(\.setting).joined(separator: ", ")))")
            }
            if let create = out["create"], !["true", "false"].contains(create) { throw DestinationSetupError(description: "create is true or false") }
            out["delay_seconds"] = out["delay_seconds"] ?? "420"
        }
        return out
    }

    static func checkCredential(_ credential: String, _ kind: DestinationKind) throws(DestinationSetupError) {
        guard (8...4096).contains(credential.utf8.count), !credential.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f }) else {
            throw DestinationSetupError(description: "the \(kind.credentialName) is 8–4096 visible characters")
        }
    }

    @discardableResult
    public func add(site: String, kind: DestinationKind, label: String?, settings: [String: String], credential: String,
                    actor: String) throws -> Int64 {
        let checked = try Self.validate(kind: kind, settings: settings)
        try Self.checkCredential(credential, kind)
        let name = (label?.trimmingCharacters(in: .whitespaces)).flatMap { $0.isEmpty ? nil : String($0.prefix(80)) } ?? kind.title
        guard try database.site(id: site) != nil else { throw DestinationSetupError(description: "no site \(site)") }
        let sealed = box.seal(Array(credential.utf8))
        return try database.transaction { tx in
            let id = try tx.addDestination(site: site, kind: kind.rawValue, label: name, settings: checked, credential: sealed,
                                           wantsContact: kind.wantsContact, at: now)
            try audit.record(in: tx, actor: actor, action: "destination_added", site: site,
                             detail: ["destination": .int(id), "kind": .string(kind.rawValue), "settings": .string(checked.keys.sorted().joined(separator: ","))])
            return id
        }
    }

    /// The site's destination `id`, or an error naming it.
    func owned(_ id: Int64, site: String) throws -> DestinationRow {
        guard let d = try database.destination(id: id), d.siteID == site else { throw DestinationSetupError(description: "no destination \(id) on \(site)") }
        return d
    }

    public func setEnabled(_ id: Int64, site: String, enabled: Bool, actor: String) throws {
        _ = try owned(id, site: site)
        try database.transaction { tx in
            try tx.updateDestination(id: id, enabled: enabled, at: now)
            try audit.record(in: tx, actor: actor, action: enabled ? "destination_enabled" : "destination_disabled", site: site,
                             detail: ["destination": .int(id)])
        }
    }

    /// Replaces the credential (the old one is not kept).
    public func setCredential(_ id: Int64, site: String, credential: String, actor: String) throws {
        let d = try owned(id, site: site)
        try Self.checkCredential(credential, DestinationKind(rawValue: d.kind) ?? .webhook)
        try database.transaction { tx in
            try tx.updateDestination(id: id, credential: box.seal(Array(credential.utf8)), at: now)
            try audit.record(in: tx, actor: actor, action: "destination_credential_changed", site: site, detail: ["destination": .int(id)])
        }
    }

    /// Removes the destination and its deliveries.
    public func remove(_ id: Int64, site: String, actor: String) throws {
        _ = try owned(id, site: site)
        try database.transaction { tx in
            try tx.removeDestination(id: id)
            try audit.record(in: tx, actor: actor, action: "destination_removed", site: site, detail: ["destination": .int(id)])
        }
    }

    /// Puts dead letters (of one destination, or all the site's) back in the queue.
    @discardableResult
    public func replay(site: String, destination: Int64?, actor: String) throws -> Int {
        if let destination { _ = try owned(destination, site: site) }
        return try database.transaction { tx in
            let n = try tx.replayDeliveries(site: site, destination: destination, at: now)
            try audit.record(in: tx, actor: actor, action: "deliveries_replayed", site: site,
                             detail: ["destination": destination.map { .int($0) } ?? .string("all"), "deliveries": .int(Int64(n))])
            return n
        }
    }
}
