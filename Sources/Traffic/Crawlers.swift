import Foundation

/// The crawler user-agent patterns of the `crawler-user-agents` project (MIT licence; PyPI
/// package `crawler-user-agents`, installed by the Makefile): one JSON array of objects with a
/// case-sensitive `pattern`, as the project's own checker applies them.
public final class CrawlerList: Sendable {
    let patterns: PatternList<String>

    public var count: Int { patterns.count }
    public var rejected: [String] { patterns.rejected }

    public init(json path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let entries = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw DatasetError.malformed(path, "not an array of objects")
        }
        var list = PatternList<String>()
        for entry in entries {
            guard let pattern = entry["pattern"] as? String else { continue }
            list.append(pattern, payload: pattern)
        }
        guard list.count > 0 else { throw DatasetError.malformed(path, "no patterns") }
        list.seal()
        patterns = list
    }

    /// The first pattern matching `userAgent`, or nil.
    public func match(_ userAgent: String) -> String? {
        match(Subject(userAgent, limit: UserAgentParser.inputLimit), MatchScratch())
    }

    func match(_ subject: Subject, _ scratch: MatchScratch) -> String? {
        patterns.firstMatch(in: subject, scratch)?.entry.payload
    }
}
