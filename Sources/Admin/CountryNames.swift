import Foundation

/// Country names for the ISO 3166-1 alpha-2 codes the geo lookup stores, from Debian's
/// `iso-codes` (`/usr/share/iso-codes/json/iso_3166-1.json`, LGPL-2.1; the Makefile installs
/// it): the common name where the standard has one ("Bolivia"), else the short name. Without the
/// file, codes are shown as they are.
struct CountryNames: Sendable {
    static let path = "/usr/share/iso-codes/json/iso_3166-1.json"
    static let installed = CountryNames(path: path)

    let names: [String: String]

    init(path: String) {
        guard let data = FileManager.default.contents(atPath: path),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let entries = root["3166-1"] as? [[String: Any]] else {
            names = [:]
            return
        }
        var names: [String: String] = [:]
        for e in entries {
            guard let code = e["alpha_2"] as? String, let name = (e["common_name"] as? String) ?? (e["name"] as? String) else { continue }
            names[code] = name
        }
        self.names = names
    }

    /// "Germany" for "DE"; the code itself when the list does not have it.
    func name(_ code: String) -> String { names[code.uppercased()] ?? code }
}
