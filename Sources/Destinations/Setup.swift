public import Foundation
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
    /// Nil when no usable key is at hand: destinations can be listed, paused, removed and
    /// replayed, not added.
    let box: SecretBox?
    let audit: AuditLog

    public init(database: AppDatabase, box: SecretBox?, audit: AuditLog) {
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
            guard value.unicodeScalars.count <= 500, !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw DestinationSetupError(description: "\(name): at most 500 characters, no control characters")
            }
            if value.isEmpty { continue }
            if name == "url" || name == "base_url" || name == "token_url" {
                // https, so that what is forwarded and the credential travel encrypted; plain http
                // only to this machine (a local gateway, tests). No user:password in the URL.
                guard let u = URL(string: value), let host = u.host?.lowercased(), !host.isEmpty, u.user == nil, u.password == nil,
                      u.scheme?.lowercased() == "https" || (u.scheme?.lowercased() == "http" && ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)) else {
                    throw DestinationSetupError(description: "\(name) must be an https URL (http only to 127.0.0.1 or localhost), without a user or password")
                }
            }
            if name == "api_version" {
                guard (1...16).contains(value.count), value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == ".") }) else {
                    throw DestinationSetupError(description: "api_version is letters, digits and dots (v21.0, 202411)")
                }
            }
            if name == "measurement_id" {
                guard value.count <= 32, value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                    throw DestinationSetupError(description: "measurement_id looks like G-XXXXXXX")
                }
            }
            if name.hasPrefix("field_") || name == "test_event_code" {
                guard value.count <= 100 else { throw DestinationSetupError(description: "\(name): at most 100 characters") }
            }
            if name == "delay_seconds" {
                guard let n = Int(value), (0...86_400).contains(n) else { throw DestinationSetupError(description: "delay_seconds is 0–86400") }
            }
            if ["pixel_id", "conversion_id", "customer_id", "conversion_action_id", "login_customer_id"].contains(name) {
                guard value.count <= 32, value.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw DestinationSetupError(description: "\(name) is digits") }
            }
            out[name] = value
        }
        for (name, required) in known where required && out[name] == nil {
            throw DestinationSetupError(description: "\(kind.rawValue) needs \(name)")
        }
        guard out.reduce(0, { $0 + $1.key.utf8.count + $1.value.utf8.count + 8 }) <= 6000 else {
            throw DestinationSetupError(description: "the settings are too long together")
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
        if kind == .googleads {
            guard credential.utf8.count <= 4096, GoogleAds.credential(credential) != nil else {
                throw DestinationSetupError(description: "the Google Ads credential is a JSON object with \(GoogleAds.credentialKeys.joined(separator: ", "))")
            }
            return
        }
        guard (8...4096).contains(credential.utf8.count), !credential.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f }) else {
            throw DestinationSetupError(description: "the \(kind.credentialName) is 8–4096 visible characters")
        }
    }

    @discardableResult
    public func add(site: String, kind: DestinationKind, label: String?, settings: [String: String], credential: String,
                    actor: String) throws -> Int64 {
        let checked = try Self.validate(kind: kind, settings: settings)
        try Self.checkCredential(credential, kind)
        // The label's CHECK counts code points.
        let name = (label?.trimmingCharacters(in: .whitespacesAndNewlines)).flatMap { t -> String? in
            var scalars = String.UnicodeScalarView()
            scalars.append(contentsOf: t.unicodeScalars.filter { $0.properties.generalCategory != .control }.prefix(80))
            return scalars.isEmpty ? nil : String(scalars)
        } ?? kind.title
        guard try database.site(id: site) != nil else { throw DestinationSetupError(description: "no site \(site)") }
        let sealed = try seal(credential)
        return try database.transaction { tx in
            let id = try tx.addDestination(site: site, kind: kind.rawValue, label: name, settings: checked, credential: sealed,
                                           wantsContact: kind.wantsContact, at: now)
            try audit.record(in: tx, actor: actor, action: "destination_added", site: site,
                             detail: ["destination": .int(id), "kind": .string(kind.rawValue), "settings": .string(checked.keys.sorted().joined(separator: ","))])
            return id
        }
    }

    /// Whether credentials can be sealed here (a usable secret key).
    public var canSeal: Bool { box != nil }

    func seal(_ credential: String) throws -> Data {
        guard let box else { throw DestinationSetupError(description: "no usable secret key on this server (see its log): credentials cannot be sealed") }
        try box.claim(database)
        return box.seal(Array(credential.utf8))
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
        let sealed = try seal(credential)
        try database.transaction { tx in
            try tx.updateDestination(id: id, credential: sealed, at: now)
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
