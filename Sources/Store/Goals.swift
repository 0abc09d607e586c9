import Foundation
import GRDB
import Storage

/// A goal: a page (path, `*` at the end matches a prefix), a custom event name, or a webhook
/// conversion kind (sale, lead, call).
public struct Goal: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case page, event, conversion }
    public var id: Int64?
    public var siteID: String
    public var name: String
    public var kind: Kind
    public var match: String

    public init(id: Int64? = nil, siteID: String, name: String, kind: Kind, match: String) {
        self.id = id; self.siteID = siteID; self.name = name; self.kind = kind; self.match = match
    }
}

/// An ordered list of goals; a visit completes step n if it reached steps 1…n in order.
public struct Funnel: Sendable, Equatable {
    public var id: Int64?
    public var siteID: String
    public var name: String
    public var steps: [Int64]

    public init(id: Int64? = nil, siteID: String, name: String, steps: [Int64]) {
        self.id = id; self.siteID = siteID; self.name = name; self.steps = steps
    }
}

/// How a goal did over a range.
public struct GoalResult: Sendable, Equatable {
    public var goal: Goal
    /// Distinct daily visitors who completed it (for conversion goals: the visitors of the visits
    /// the conversions are attributed to; a conversion linked to no visit adds a completion only).
    public var visitors: Int
    public var completions: Int
}

/// Visits reaching each step of a funnel, and their distinct visitors per day (of the visit's start) summed.
public struct FunnelResult: Sendable, Equatable {
    public var funnel: Funnel
    public var steps: [(goal: Goal, visits: Int, visitors: Int)]

    public static func == (a: Self, b: Self) -> Bool {
        a.funnel == b.funnel && a.steps.map(\.visits) == b.steps.map(\.visits) && a.steps.map(\.visitors) == b.steps.map(\.visitors)
    }
}

extension WriteTransaction {
    @discardableResult
    public func addGoal(_ g: Goal) throws -> Goal {
        try db.execute(sql: "INSERT INTO goals (site_id, name, kind, match) VALUES (?,?,?,?)", arguments: [g.siteID, g.name, g.kind.rawValue, g.match])
        var g = g
        g.id = db.lastInsertedRowID
        return g
    }

    public func goal(site: String, id: Int64) throws -> Goal? {
        try Row.fetchOne(db, sql: "SELECT * FROM goals WHERE site_id = ? AND id = ?", arguments: [site, id]).map(Goal.init(row:))
    }

    public func deleteGoal(site: String, id: Int64) throws {
        try db.execute(sql: "DELETE FROM goals WHERE site_id = ? AND id = ?", arguments: [site, id])
        // Funnels that used the goal lose that step.
        for row in try Row.fetchAll(db, sql: "SELECT id, steps FROM funnels WHERE site_id = ?", arguments: [site]) {
            let steps = (row["steps"] as String).split(separator: ",").compactMap { Int64($0) }.filter { $0 != id }
            try db.execute(sql: "UPDATE funnels SET steps = ? WHERE id = ?", arguments: [steps.map(String.init).joined(separator: ","), row["id"] as Int64])
        }
    }
}

extension Goal {
    init(row: Row) {
        self.init(id: row["id"], siteID: row["site_id"], name: row["name"], kind: Goal.Kind(rawValue: row["kind"]) ?? .page, match: row["match"])
    }
}

extension AppDatabase {
    /// Adds a goal without an audit entry (seeding and benchmarks; people add goals through Actions.Administration).
    @discardableResult
    public func addGoal(_ g: Goal) throws -> Goal {
        try transaction { try $0.addGoal(g) }
    }

    public func goals(site: String) throws -> [Goal] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM goals WHERE site_id = ? ORDER BY id", arguments: [site]).map(Goal.init(row:))
        }
    }

    @discardableResult
    public func addFunnel(_ f: Funnel) throws -> Funnel {
        try writer.write { db in
            try db.execute(sql: "INSERT INTO funnels (site_id, name, steps) VALUES (?,?,?)",
                           arguments: [f.siteID, f.name, f.steps.map(String.init).joined(separator: ",")])
            var f = f
            f.id = db.lastInsertedRowID
            return f
        }
    }

    public func funnels(site: String) throws -> [Funnel] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM funnels WHERE site_id = ? ORDER BY id", arguments: [site]).map {
                Funnel(id: $0["id"], siteID: $0["site_id"], name: $0["name"],
                       steps: ($0["steps"] as String).split(separator: ",").compactMap { Int64($0) })
            }
        }
    }

    public func deleteFunnel(site: String, id: Int64) throws {
        try writer.write { db in try db.execute(sql: "DELETE FROM funnels WHERE site_id = ? AND id = ?", arguments: [site, id]) }
    }

    static func goalWhere(_ g: Goal) -> (String, [(any DatabaseValueConvertible)?]) {
        switch g.kind {
        case .page where g.match.hasSuffix("*"):
            let prefix = String(g.match.dropLast())
            return ("name = 'pageview' AND substr(path, 1, ?) = ?", [prefix.count, prefix])
        case .page: return ("name = 'pageview' AND path = ?", [g.match])
        case .event: return ("name = ?", [g.match])
        case .conversion: return ("kind = ?", [g.match])
        }
    }

    public func goalResults(site: String, from: Int64, to: Int64, filters: Filters = Filters()) throws -> [GoalResult] {
        let goals = try goals(site: site)
        return try writer.read { db in
            let calendar = try Self.calendar(db, site: site)
            return try goals.map { g in
                let (cond, args) = Self.goalWhere(g)
                let base: [(any DatabaseValueConvertible)?] = [site, from, to]
                if g.kind == .conversion {
                    // Visitors: those of the visits the conversions are attributed to, per day as everywhere.
                    let scope = filters.conversionScope("c")
                    let row = try Row.fetchOne(db, sql: """
                        SELECT coalesce(sum(v), 0), coalesce(sum(n), 0) FROM (
                          SELECT count(DISTINCT s.visitor) AS v, count(*) AS n FROM conversions c LEFT JOIN sessions s ON s.id = c.session_id
                          WHERE c.site_id = ? AND c.ts >= ? AND c.ts < ? AND c.\(cond)\(scope.sql) GROUP BY \(calendar.sqlDay("c.ts")))
                        """, arguments: StatementArguments(base + args + scope.arguments))
                    return GoalResult(goal: g, visitors: row?[0] ?? 0, completions: row?[1] ?? 0)
                }
                let f = filters.clause(site: site, from: from, to: to)
                let row = try Row.fetchOne(db, sql: """
                    SELECT coalesce(sum(v), 0), coalesce(sum(n), 0) FROM (
                      SELECT count(DISTINCT visitor) AS v, count(*) AS n FROM events
                      WHERE site_id = ? AND ts >= ? AND ts < ? AND \(cond)\(f.sql) GROUP BY \(calendar.sqlDay("ts")))
                    """, arguments: StatementArguments(base + args + f.arguments))
                return GoalResult(goal: g, visitors: row?[0] ?? 0, completions: row?[1] ?? 0)
            }
        }
    }

    /// Visits (sessions started in the range) that reached each step in order. A conversion step
    /// counts for the visit a conversion is attributed to, after the previous step.
    public func funnelResult(_ funnel: Funnel, from: Int64, to: Int64) throws -> FunnelResult {
        let byID = Dictionary(uniqueKeysWithValues: try goals(site: funnel.siteID).compactMap { g in g.id.map { ($0, g) } })
        let steps = funnel.steps.compactMap { byID[$0] }
        guard !steps.isEmpty else { return FunnelResult(funnel: funnel, steps: []) }
        return try writer.read { db in
            // Per step: for each session, the times at which it reached the step.
            var times: [[Int64: [Int64]]] = []
            for g in steps {
                let (cond, args) = Self.goalWhere(g)
                var perSession: [Int64: [Int64]] = [:]
                let sql = g.kind == .conversion ? """
                    SELECT s.id, c.ts FROM conversions c JOIN sessions s ON s.id = c.session_id
                    WHERE c.site_id = ? AND s.started_at >= ? AND s.started_at < ? AND c.\(cond)
                    """ : """
                    SELECT e.session_id, e.ts FROM events e JOIN sessions s ON s.id = e.session_id
                    WHERE e.site_id = ? AND s.started_at >= ? AND s.started_at < ? AND e.\(cond)
                    """
                let cursor = try Row.fetchCursor(db, sql: sql, arguments: StatementArguments(([funnel.siteID, from, to] as [(any DatabaseValueConvertible)?]) + args))
                while let row = try cursor.next() {
                    perSession[row[0], default: []].append(row[1])
                }
                times.append(perSession)
            }
            // Visitors per day (of the visit's start), summed, as everywhere.
            var visitorOf: [Int64: [Int64]] = [:]
            let calendar = try Self.calendar(db, site: funnel.siteID)
            let sessions = try Row.fetchCursor(db, sql: """
                SELECT id, \(calendar.sqlDay("started_at")), visitor FROM sessions WHERE site_id = ? AND started_at >= ? AND started_at < ?
                """, arguments: [funnel.siteID, from, to])
            while let row = try sessions.next() { visitorOf[row[0]] = [row[1], row[2]] }
            var reached = [Int](repeating: 0, count: steps.count)
            var visitors = [Set<[Int64]>](repeating: [], count: steps.count)
            for (session, firstTimes) in times[0] {
                var at = firstTimes.min()!
                reached[0] += 1
                if let v = visitorOf[session] { visitors[0].insert(v) }
                for i in 1..<steps.count {
                    guard let next = times[i][session]?.filter({ $0 >= at }).min() else { break }
                    at = next
                    reached[i] += 1
                    if let v = visitorOf[session] { visitors[i].insert(v) }
                }
            }
            return FunnelResult(funnel: funnel, steps: steps.indices.map { (steps[$0], reached[$0], visitors[$0].count) })
        }
    }
}
