public import Foundation
import Privacy
public import Store

/// Site ids and domain names from user input.
public enum Bootstrap {
    /// A new random site id: 12 characters of letters and digits.
    public static func newSiteID() -> String {
        PasswordHasher.randomPassword(length: 12).lowercased().filter { $0.isLetter || $0.isNumber }
    }

    /// Domain names from user input: lower-cased, scheme and path removed; an error names the first bad one.
    public static func domains(_ raw: [String]) -> Result<[String], InputProblem> {
        var out: [String] = []
        for r in raw {
            var d = r.lowercased().trimmingCharacters(in: .whitespaces)
            for prefix in ["https://", "http://"] where d.hasPrefix(prefix) { d = String(d.dropFirst(prefix.count)) }
            if let slash = d.firstIndex(of: "/") { d = String(d[..<slash]) }
            if d.isEmpty { continue }
            guard d.count <= 253, d.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) else {
                return .failure(InputProblem(description: "\(r.prefix(100)) is not a domain name"))
            }
            out.append(d)
        }
        return out.isEmpty ? .failure(InputProblem(description: "give at least one domain")) : .success(out)
    }
}

/// A reason user input was refused.
public struct InputProblem: Error, CustomStringConvertible {
    public let description: String
}
