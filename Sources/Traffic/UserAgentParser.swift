import Foundation
import Yams

/// What uap-core's parsers say about a user agent: browser, OS and device families as the
/// dataset names them ("Other" when no parser matches).
public struct AgentFacts: Sendable, Equatable {
    public var browser: String = "Other"
    public var browserMajor: String?
    public var os: String = "Other"
    public var osMajor: String?
    public var device: String = "Other"
    public var brand: String?
    public var model: String?
}

/// The user-agent parsers of uap-core (`regexes.yaml`, Debian package `uap-core`), applied as
/// its specification says: parsers in file order, the first match wins, `$N` in a replacement
/// is capture group N, and without a replacement a field is its default group.
public final class UserAgentParser: Sendable {
    /// Longer input is cut before parsing: real user agents are far shorter, and the cut bounds
    /// the work a hostile one can cause.
    public static let inputLimit = 512

    let agents: PatternList<[String?]>
    let systems: PatternList<[String?]>
    let devices: PatternList<[String?]>

    public var patternCount: Int { agents.count + systems.count + devices.count }
    /// Patterns PCRE2 could not compile (each message names the pattern).
    public var rejected: [String] { agents.rejected + systems.rejected + devices.rejected }

    public init(regexesYAML path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard let root = try Yams.load(yaml: text, .basic) as? [String: Any] else { throw DatasetError.malformed(path, "not a mapping") }
        func list(_ key: String, _ fields: [String]) throws -> PatternList<[String?]> {
            guard let rules = root[key] as? [[String: Any]] else { throw DatasetError.malformed(path, "no \(key)") }
            var list = PatternList<[String?]>()
            for rule in rules {
                guard let regex = rule["regex"].map(yamlString) else { continue }
                let caseless = rule["regex_flag"].map(yamlString) == "i"
                // An empty replacement counts as none (as in the reference parsers).
                list.append(regex, caseless: caseless, payload: fields.map { rule[$0].map(yamlString).flatMap { $0.isEmpty ? nil : $0 } })
            }
            list.seal()
            return list
        }
        agents = try list("user_agent_parsers", ["family_replacement", "v1_replacement", "v2_replacement", "v3_replacement"])
        systems = try list("os_parsers", ["os_replacement", "os_v1_replacement", "os_v2_replacement", "os_v3_replacement"])
        devices = try list("device_parsers", ["device_replacement", "brand_replacement", "model_replacement"])
    }

    public func parse(_ userAgent: String) -> AgentFacts {
        parse(Subject(userAgent, limit: Self.inputLimit), MatchScratch())
    }

    func parse(_ subject: Subject, _ scratch: MatchScratch) -> AgentFacts {
        var facts = AgentFacts()
        if let (entry, groups) = agents.firstMatch(in: subject, scratch) {
            facts.browser = Self.field(entry.payload[0], group: 1, groups, subject) ?? "Other"
            facts.browserMajor = Self.field(entry.payload[1], group: 2, groups, subject)
        }
        if let (entry, groups) = systems.firstMatch(in: subject, scratch) {
            facts.os = Self.field(entry.payload[0], group: 1, groups, subject) ?? "Other"
            facts.osMajor = Self.field(entry.payload[1], group: 2, groups, subject)
        }
        if let (entry, groups) = devices.firstMatch(in: subject, scratch) {
            facts.device = Self.field(entry.payload[0], group: 1, groups, subject) ?? "Other"
            facts.brand = Self.field(entry.payload[1], group: nil, groups, subject)
            facts.model = Self.field(entry.payload[2], group: 1, groups, subject)
        }
        return facts
    }

    /// A field: its replacement with `$N` interpolated, else capture group `group`; trimmed,
    /// nil when empty.
    static func field(_ replacement: String?, group: Int?, _ groups: [Range<Int>?], _ subject: Subject) -> String? {
        func capture(_ n: Int) -> String {
            n < groups.count ? groups[n].map(subject.text) ?? "" : ""
        }
        var text: String
        if let replacement {
            if replacement.utf8.contains(UInt8(ascii: "$")) {
                text = ""
                var chars = replacement.makeIterator()
                while let c = chars.next() {
                    if c == "$" {
                        guard let d = chars.next() else { text.append(c); break }
                        if let n = d.wholeNumberValue { text += capture(n) } else { text.append(c); text.append(d) }
                    } else {
                        text.append(c)
                    }
                }
            } else {
                text = replacement
            }
        } else if let group {
            text = capture(group)
        } else {
            return nil
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty ? nil : trimmed
    }
}

/// A YAML scalar as text (the basic resolver leaves every scalar a string).
func yamlString(_ value: Any) -> String {
    if let s = value as? String { return s }
    return "\(value)"
}
