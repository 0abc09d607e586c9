import Foundation
import Synchronization
public import Storage

/// How long a client id stays unique on PostgreSQL: longer than the pixel keeps an event to send
/// again (it lets go of events 69 hours old; the collector takes times up to 72 hours old).
public let eventIDWindowMilliseconds: Int64 = 4 * SiteCalendar.dayMs

/// How long a batch's commit record is kept: long enough to look it up after a lost connection.
let batchRecordMilliseconds: Int64 = SiteCalendar.dayMs

/// Days (UTC) ahead of today and behind it whose events partitions are created before any event
/// needs them, so ingestion rarely waits for DDL (the collector takes times up to 72 h old).
let partitionDaysAhead: Int64 = 2
let partitionDaysBehind: Int64 = 3

extension PostgresDatabase: EventSink {
    /// Stores a batch as ``EventSink`` says, across any number of nodes:
    ///
    /// - the visitors of the batch are locked (transaction-scoped advisory locks, taken in key
    ///   order, so two nodes never wait on each other in a cycle); a visitor's session is read,
    ///   continued or opened and written back under its lock, so sessions are the same whichever
    ///   node each request reached;
    /// - a client id is claimed in `event_client_ids` (its primary key decides between nodes);
    /// - a row naming the batch commits with it, and every attempt to store the batch first takes
    ///   the batch's own lock and looks for that row. When the connection is lost (and with it,
    ///   maybe, the COMMIT's answer), the batch is sent again on a new connection, at most twice
    ///   more: the attempt finds the batch committed and answers its outcomes, or stores it. An
    ///   earlier attempt whose server session outlived its connection holds the batch's lock
    ///   until it commits or rolls back, so the two never both store it.
    ///
    /// Every attempt bounds its waits: 10 s for a lock, 30 s for a statement.
    public func insertEvents(_ batch: [EventRow], tallies: [ConsentTally]) throws -> [InsertOutcome] {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        maintainIngestion(now: now)
        let id = UUID()
        var attempt = 0
        while true {
            attempt += 1
            do {
                try ensurePartitions(days: Set(batch.map { SiteCalendar.utc.day(of: $0.timestamp) }))
                return try transaction { c in
                    let key = id.uuid.0.lockKeyPart(id.uuid.1, id.uuid.2, id.uuid.3)
                    try c.query("""
                        SELECT set_config('lock_timeout', '10s', true), set_config('statement_timeout', '30s', true),
                          pg_advisory_xact_lock($1, $2::int)
                        """, [.int(Int64(AdvisoryLock.batch.rawValue)), .int(key)])
                    let found = try c.query("SELECT outcomes FROM ingest_batches WHERE id = $1", [.text(id.uuidString)])
                    if let stored = found.rows.first?.first ?? nil { return PostgresIngest.decode(stored) }
                    var ingest = PostgresIngest(connection: c, now: now)
                    let outcomes = try ingest.write(batch, tallies: tallies)
                    try c.query("INSERT INTO ingest_batches (id, node, committed_at, outcomes) VALUES ($1, $2, $3, $4)",
                                [.text(id.uuidString), .text(node), .int(now), .text(PostgresIngest.encode(outcomes))])
                    return outcomes
                }
            } catch let error as PostgresError where error.connectionLost && attempt < 3 {
                // The other pooled connections went with it (a restart, a failover).
                dropIdleConnections()
                Thread.sleep(forTimeInterval: attempt == 1 ? 0.1 : 1)
            }
        }
    }

    /// Creates the events partitions of `days` (UTC days) this process has not seen yet. Nodes
    /// creating the same one together: the first wins, the others find it made. Creating one
    /// waits for the parent table's lock at most 2 s (a long query holds it): the batch then
    /// fails and is sent again by its client, rather than every ingest queueing behind the DDL.
    func ensurePartitions(days: Set<Int64>) throws {
        let missing = days.subtracting(partitions.withLock { $0 })
        for day in missing.sorted() {
            let name = "events_" + SiteCalendar.utc.dateText(of: day * SiteCalendar.dayMs).replacingOccurrences(of: "-", with: "")
            do {
                try transaction { c in
                    try c.query("SET LOCAL lock_timeout = '2s'")
                    try c.query("""
                        CREATE TABLE IF NOT EXISTS \(name) PARTITION OF events
                        FOR VALUES FROM (\(day * SiteCalendar.dayMs)) TO (\((day + 1) * SiteCalendar.dayMs))
                        """)
                }
            } catch let error as PostgresError where error.sqlState == "42P07" || error.sqlState == "23505" {
                // Made by another node between IF NOT EXISTS and the catalog insert.
            }
            partitions.withLock { _ = $0.insert(day) }
        }
    }

    /// Every ten minutes per process, off the writer's thread (one pass at a time): the
    /// partitions of the days around today made ahead, and the client ids and batch records past
    /// their window let go. A pass that failed is tried again at the next batch; its error is
    /// kept for ``ingestionMaintenanceError``.
    func maintainIngestion(now: Int64) {
        let due = maintainedAt.withLock { last in
            guard now - last >= 600_000 else { return false }
            last = now
            return true
        }
        guard due else { return }
        maintenance.async { [self] in
            let today = SiteCalendar.utc.day(of: now)
            // Each step on its own: a partition that cannot be made now does not keep old ids.
            var failure: (any Error)?
            for step in [
                { try self.ensurePartitions(days: Set((today - partitionDaysBehind)...(today + partitionDaysAhead))) },
                { try self.query("DELETE FROM event_client_ids WHERE seen_at < $1", [.int(now - eventIDWindowMilliseconds)]) },
                { try self.query("DELETE FROM ingest_batches WHERE committed_at < $1", [.int(now - batchRecordMilliseconds)]) },
            ] as [() throws -> Void] {
                do { try step() } catch { failure = failure ?? error }
            }
            if failure != nil { maintainedAt.withLock { $0 = 0 } }
            maintenanceError.withLock { $0 = failure.map { "\($0)" } }
        }
    }

    /// The last ingestion maintenance pass's error, nil once one succeeded.
    public var ingestionMaintenanceError: String? { maintenanceError.withLock { $0 } }
}

/// The columns of a session as ``PostgresIngest`` reads and copies them.
private let sessionColumns = """
    id, site_id, visitor, subject, decision, started_at, last_seen, entry_path, exit_path, pageviews, interactions, engaged_ms,
    duration_ms, bounce, forwardable, source_type, referrer_host, referrer_path, utm_source, utm_medium, utm_campaign, utm_term,
    utm_content, click_id_kind, channel, source_name, country, browser, os, device
    """

private let eventColumns = """
    id, site_id, client_id, ts, name, path, decision, visitor, session_id, subject, country, region, city, asn, asn_org, browser,
    browser_version, os, device, screen, source_type, referrer_host, referrer_path, utm_source, utm_medium, utm_campaign, utm_term,
    utm_content, click_id_kind, click_id, props, value, currency, engaged_ms, scroll, email_hash, channel, source_name
    """

/// One batch's writes, in the caller's transaction. Reads what the batch's visitors already have
/// in one statement, applies the session rule (``VisitState``) in memory, and writes sessions and
/// events with COPY: a handful of round trips per batch, not several per event.
struct PostgresIngest {
    let connection: PostgresConnection
    let now: Int64
    private var calendars: [String: SiteCalendar] = [:]

    init(connection: PostgresConnection, now: Int64) {
        self.connection = connection
        self.now = now
    }

    /// A visitor's advisory-lock key: the visitor hash mixed with its site's (a collision only
    /// makes two visitors wait for each other).
    static func lockKey(site: String, visitor: Int64) -> Int64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in site.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return visitor ^ Int64(bitPattern: h)
    }

    static func encode(_ outcomes: [InsertOutcome]) -> String {
        String(outcomes.map { $0 == .stored ? "s" : "d" })
    }

    static func decode(_ text: String) -> [InsertOutcome] {
        text.map { $0 == "s" ? .stored : .duplicate }
    }

    mutating func write(_ batch: [EventRow], tallies: [ConsentTally]) throws -> [InsertOutcome] {
        try lockVisitors(batch, tallies)
        let outcomes = try claimClientIDs(batch)
        try loadCalendars(Set(batch.map(\.siteID) + tallies.map(\.site)))
        let stored = batch.indices.filter { outcomes[$0] == .stored }.map { batch[$0] }
        var visits = try openVisits(of: stored)
        let known = visits.count
        var changed = Set<Int>()
        var staleDays = Set<SiteDay>()
        // Each event with its visit and the visit's forwarding answer as that event left it.
        var events: [(row: EventRow, visit: Int, forwardable: Bool)] = []
        events.reserveCapacity(stored.count)
        for e in stored {
            let found = Self.latest(visits, holding: e, visitor: e.visitor)
                ?? e.previousVisitor.flatMap { Self.latest(visits, holding: e, visitor: $0) }
            let v: Int
            if let found {
                visits[found].add(e)
                v = found
            } else {
                visits.append(VisitState(id: 0, opening: e))
                v = visits.count - 1
            }
            if v < known { changed.insert(v) }
            if e.late {
                // Its day's figures changed, and its visit's (counted on the day the visit began).
                let calendar = calendar(e.siteID)
                staleDays.insert(SiteDay(site: e.siteID, day: calendar.day(of: e.timestamp)))
                staleDays.insert(SiteDay(site: e.siteID, day: calendar.day(of: visits[v].session.startedAt)))
            }
            var row = e
            visits[v].acquisition.apply(to: &row)
            events.append((row, v, visits[v].forwardable))
        }
        try writeVisits(&visits, new: known..<visits.count, changed: changed.sorted())
        let ids = try allocate("events_id_seq", events.count)
        var copy = CopyRows()
        for (i, (e, v, _)) in events.enumerated() { try Self.add(e, id: ids[i], session: visits[v].session.id, to: &copy) }
        if copy.count > 0 { try connection.copy("COPY events (\(eventColumns)) FROM STDIN", copy) }
        for (i, (e, v, forwardable)) in events.enumerated() where e.isConversion && e.attributable {
            try storeConversion(e, eventID: ids[i], visit: visits[v], forwardable: forwardable)
        }
        if !staleDays.isEmpty {
            let days = staleDays.sorted { ($0.site, $0.day) < ($1.site, $1.day) }
            try connection.query("""
                INSERT INTO rollup_stale (site_id, day) SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING
                """, [.array(days.map(\.site)), .array(days.map(\.day))])
        }
        try count(ConsentTally.merging(tallies, stored: stored, day: { calendar($0.siteID).day(of: $0.timestamp) }))
        return outcomes
    }

    /// Locks every visitor the batch touches (today's hash, yesterday's, and those whose
    /// visits a refusal withdraws), in key order.
    private func lockVisitors(_ batch: [EventRow], _ tallies: [ConsentTally]) throws {
        var keys = Set<Int64>()
        for e in batch {
            keys.insert(Self.lockKey(site: e.siteID, visitor: e.visitor))
            if let p = e.previousVisitor { keys.insert(Self.lockKey(site: e.siteID, visitor: p)) }
        }
        for t in tallies { for v in t.withdrawn { keys.insert(Self.lockKey(site: t.site, visitor: v)) } }
        guard !keys.isEmpty else { return }
        try connection.query("SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k", [.array(keys.sorted())])
    }

    /// Claims the batch's client ids; an id claimed before (or earlier in the batch) is a duplicate.
    private func claimClientIDs(_ batch: [EventRow]) throws -> [InsertOutcome] {
        var outcomes = [InsertOutcome](repeating: .stored, count: batch.count)
        // In key order, as two nodes claiming the same ids must take them (or wait on each other
        // in a cycle); the first of equal ids in the batch is the one stored.
        let claimed = batch.indices.filter { batch[$0].clientID != nil }
            .sorted { (batch[$0].siteID, batch[$0].clientID!, $0) < (batch[$1].siteID, batch[$1].clientID!, $1) }
        guard !claimed.isEmpty else { return outcomes }
        let rows = try connection.query("""
            INSERT INTO event_client_ids (site_id, client_id, seen_at)
            SELECT site, id, $3 FROM unnest($1::text[], $2::text[]) AS t(site, id)
            ON CONFLICT DO NOTHING RETURNING site_id, client_id
            """, [.array(claimed.map { batch[$0].siteID }), .array(claimed.map { batch[$0].clientID }), .int(now)])
        var fresh = Set(rows.rows.map { SiteClientID(site: $0[0] ?? "", id: $0[1] ?? "") })
        for i in claimed.sorted() where fresh.remove(SiteClientID(site: batch[i].siteID, id: batch[i].clientID!)) == nil {
            outcomes[i] = .duplicate
        }
        return outcomes
    }

    private mutating func loadCalendars(_ sites: Set<String>) throws {
        guard !sites.isEmpty else { return }
        let rows = try connection.query("SELECT id, timezone FROM sites WHERE id = ANY($1::text[])", [.array(sites.sorted())])
        for r in rows.rows {
            if let id = r[0] { calendars[id] = r[1].flatMap(SiteCalendar.init(identifier:)) ?? .utc }
        }
    }

    private func calendar(_ site: String) -> SiteCalendar { calendars[site] ?? .utc }

    /// The sessions a stored event could join: its visitor's (either hash) whose span, widened
    /// by the gap, meets the batch's times.
    private func openVisits(of stored: [EventRow]) throws -> [VisitState] {
        guard let first = stored.first else { return [] }
        var keys = Set<SiteVisitor>()
        var from = first.timestamp, to = first.timestamp
        for e in stored {
            keys.insert(SiteVisitor(site: e.siteID, visitor: e.visitor))
            if let p = e.previousVisitor { keys.insert(SiteVisitor(site: e.siteID, visitor: p)) }
            from = min(from, e.timestamp); to = max(to, e.timestamp)
        }
        let sorted = keys.sorted { ($0.site, $0.visitor) < ($1.site, $1.visitor) }
        let rows = try connection.query("""
            SELECT \(sessionColumns.split(separator: ",").map { "s." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", "))
            FROM sessions s JOIN unnest($1::text[], $2::bigint[]) AS k(site, visitor) ON s.site_id = k.site AND s.visitor = k.visitor
            WHERE s.last_seen >= $3 AND s.started_at <= $4
            ORDER BY s.id
            FOR UPDATE OF s
            """, [.array(sorted.map(\.site)), .array(sorted.map(\.visitor)),
                  .int(from - sessionGapMilliseconds), .int(to + sessionGapMilliseconds)])
        return rows.rows.indices.map { i in
            let t = { (c: Int) in rows.text(i, c) }, n = { (c: Int) in rows.int(i, c) ?? 0 }
            let session = SessionRow(id: n(0), siteID: t(1) ?? "", visitor: n(2), subject: rows.int(i, 3), decision: t(4) ?? "anonymous",
                                     startedAt: n(5), lastSeen: n(6), entryPath: t(7), exitPath: t(8), pageviews: n(9),
                                     interactions: n(10), engagedMs: n(11), durationMs: n(12), bounce: n(13) == 1)
            return VisitState(session: session, forwardable: n(14) == 1,
                              acquisition: VisitAcquisition(sourceType: t(15) ?? "direct", referrerHost: t(16), referrerPath: t(17),
                                                            utmSource: t(18), utmMedium: t(19), utmCampaign: t(20), utmTerm: t(21),
                                                            utmContent: t(22), clickIDKind: t(23), channel: t(24), sourceName: t(25)),
                              country: t(26), browser: t(27), os: t(28), device: t(29))
        }
    }

    /// Of the sessions `e` joins under `visitor`, the one seen last (as SQLite's lookup orders).
    private static func latest(_ visits: [VisitState], holding e: EventRow, visitor: Int64) -> Int? {
        visits.indices.filter { visits[$0].holds(site: e.siteID, visitor: visitor, at: e.timestamp) }
            .max { visits[$0].session.lastSeen < visits[$1].session.lastSeen }
    }

    /// Copies the sessions the batch opened (giving them their ids) and writes back those it changed.
    private func writeVisits(_ visits: inout [VisitState], new: Range<Int>, changed: [Int]) throws {
        if !new.isEmpty {
            let ids = try allocate("sessions_id_seq", new.count)
            var copy = CopyRows()
            for (i, v) in new.enumerated() {
                visits[v].session.id = ids[i]
                let s = visits[v].session, a = visits[v].acquisition
                copy.add(s.id); try copy.add(s.siteID); copy.add(s.visitor); copy.add(s.subject); try copy.add(s.decision)
                copy.add(s.startedAt); copy.add(s.lastSeen); try copy.add(s.entryPath); try copy.add(s.exitPath)
                copy.add(s.pageviews); copy.add(s.interactions); copy.add(s.engagedMs); copy.add(s.durationMs)
                copy.add(Int64(s.bounce ? 1 : 0)); copy.add(Int64(visits[v].forwardable ? 1 : 0))
                try copy.add(a.sourceType); try copy.add(a.referrerHost); try copy.add(a.referrerPath); try copy.add(a.utmSource)
                try copy.add(a.utmMedium); try copy.add(a.utmCampaign); try copy.add(a.utmTerm); try copy.add(a.utmContent)
                try copy.add(a.clickIDKind); try copy.add(a.channel); try copy.add(a.sourceName)
                try copy.add(visits[v].country); try copy.add(visits[v].browser); try copy.add(visits[v].os); try copy.add(visits[v].device)
                copy.endRow()
            }
            try connection.copy("COPY sessions (\(sessionColumns)) FROM STDIN", copy)
        }
        guard !changed.isEmpty else { return }
        let v = changed.map { visits[$0].session }, forwardable = changed.map { visits[$0].forwardable }
        try connection.query("""
            UPDATE sessions AS s SET last_seen = v.last_seen, duration_ms = v.duration_ms, exit_path = v.exit_path,
              pageviews = v.pageviews, interactions = v.interactions, engaged_ms = v.engaged_ms, bounce = v.bounce,
              forwardable = v.forwardable, subject = v.subject, decision = v.decision
            FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
                        $8::smallint[], $9::smallint[], $10::bigint[], $11::text[])
              AS v(id, last_seen, duration_ms, exit_path, pageviews, interactions, engaged_ms, bounce, forwardable, subject, decision)
            WHERE s.id = v.id
            """, [.array(v.map(\.id)), .array(v.map(\.lastSeen)), .array(v.map(\.durationMs)), .array(v.map(\.exitPath)),
                  .array(v.map(\.pageviews)), .array(v.map(\.interactions)), .array(v.map(\.engagedMs)),
                  .array(v.map { Int64($0.bounce ? 1 : 0) }), .array(forwardable.map { Int64($0 ? 1 : 0) }),
                  .array(v.map(\.subject)), .array(v.map(\.decision))])
    }

    /// `n` values of a sequence, in the order it gave them.
    private func allocate(_ sequence: String, _ n: Int) throws -> [Int64] {
        guard n > 0 else { return [] }
        let rows = try connection.query("SELECT nextval('\(sequence)') FROM generate_series(1, $1)", [.int(Int64(n))])
        return rows.rows.indices.compactMap { rows.int($0, 0) }.sorted()
    }

    private static func add(_ e: EventRow, id: Int64, session: Int64, to copy: inout CopyRows) throws {
        copy.add(id); try copy.add(e.siteID); try copy.add(e.clientID); copy.add(e.timestamp); try copy.add(e.name); try copy.add(e.path)
        try copy.add(e.decision.rawValue); copy.add(e.visitor); copy.add(session); copy.add(e.subject)
        try copy.add(e.country); try copy.add(e.region); try copy.add(e.city); copy.add(e.asn); try copy.add(e.asnOrg)
        try copy.add(e.browser); try copy.add(e.browserVersion); try copy.add(e.os); try copy.add(e.device); try copy.add(e.screen)
        try copy.add(e.sourceType); try copy.add(e.referrerHost); try copy.add(e.referrerPath); try copy.add(e.utmSource)
        try copy.add(e.utmMedium); try copy.add(e.utmCampaign); try copy.add(e.utmTerm); try copy.add(e.utmContent)
        try copy.add(e.clickIDKind); try copy.add(e.clickID); try copy.add(e.props); copy.add(e.value); try copy.add(e.currency)
        copy.add(e.engagedMs); copy.add(e.scroll); copy.add(e.emailHash); try copy.add(e.channel); try copy.add(e.sourceName)
        copy.endRow()
    }

    /// The attributed conversion of a conversion event (a sale with a value, a lead without),
    /// and its outbox rows when its visit, as the event left it, may be forwarded: as SQLite's
    /// ingestion stores them.
    private func storeConversion(_ e: EventRow, eventID: Int64, visit: VisitState, forwardable: Bool) throws {
        let externalID = e.conversionExternalID(storedID: eventID)
        let acquisition: [PostgresValue] = [.text(e.sourceType), PostgresValue(e.referrerHost), PostgresValue(e.utmSource),
                                            PostgresValue(e.utmMedium), PostgresValue(e.utmCampaign), .int(visit.session.startedAt)]
        let inserted = try connection.query("""
            INSERT INTO conversions (site_id, provider, external_id, kind, ts, value, currency, subject, attributed_via,
              first_source_type, first_referrer_host, first_utm_source, first_utm_medium, first_utm_campaign, first_ts,
              last_source_type, last_referrer_host, last_utm_source, last_utm_medium, last_utm_campaign, last_ts, session_id)
            VALUES ($1, $2, $3, $4, $5, $6::double precision, $7, $8, 'visit', $9, $10, $11, $12, $13, $14,
                    $15, $16, $17, $18, $19, $20, $21)
            ON CONFLICT (site_id, provider, external_id) DO NOTHING RETURNING id
            """, [.text(e.siteID), .text(EventRow.conversionProvider), .text(externalID), .text(e.value == nil ? "lead" : "sale"),
                  .int(e.timestamp), .text("\(e.value ?? 0)"), PostgresValue(e.currency), e.subject.map(PostgresValue.int) ?? .null]
                + acquisition + acquisition + [.int(visit.session.id)])
        guard let conversionID = inserted.rows.isEmpty ? nil : inserted.int(0, 0), forwardable else { return }
        let destinations = try connection.query("SELECT id, settings, wants_contact FROM destinations WHERE site_id = $1 AND enabled = 1 ORDER BY id",
                                                [.text(e.siteID)])
        guard !destinations.rows.isEmpty else { return }
        let facts = DeliveryFacts(pixel: e)
        var click: (kind: String?, id: String, ts: Int64)?
        if facts.clickID == nil {
            // The visit's latest click id up to this event (as stored before it, in SQLite's order).
            let found = try connection.query("""
                SELECT click_id_kind, click_id, ts FROM events
                WHERE session_id = $1 AND click_id IS NOT NULL AND id <= $2 AND ts BETWEEN $3 AND $4
                ORDER BY ts DESC LIMIT 1
                """, [.int(visit.session.id), .int(eventID), .int(visit.session.startedAt), .int(visit.session.lastSeen)])
            if !found.rows.isEmpty, let id = found.text(0, 1) { click = (found.text(0, 0), id, found.int(0, 2) ?? 0) }
        }
        let outbox = try Outbox.rows(facts: facts, eventID: "\(EventRow.conversionProvider):\(externalID)", landing: visit.session.entryPath,
                                     click: click, contact: e.forwardContact,
                                     destinations: destinations.rows.indices.map {
                                         OutboxDestination(id: destinations.int($0, 0) ?? 0, settings: destinations.text($0, 1) ?? "{}",
                                                           wantsContact: destinations.int($0, 2) == 1)
                                     }, now: now)
        for r in outbox {
            try connection.query("""
                INSERT INTO deliveries (destination_id, site_id, conversion_id, event_id, facts, contact, status, due_at, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8) ON CONFLICT (destination_id, event_id) DO NOTHING
                """, [.int(r.destinationID), .text(e.siteID), .int(conversionID), .text(r.eventID), .text(r.facts),
                      r.contact.map { .bytes([UInt8]($0)) } ?? .null, .int(r.dueAt), .int(now)])
        }
    }

    /// Adds the batch's consent counts (rows in key order, so two nodes lock them alike) and
    /// withdraws the forwarding of refusing visitors' visits.
    private func count(_ tallies: [ConsentTally]) throws {
        for t in tallies where !t.withdrawn.isEmpty {
            try connection.query("UPDATE sessions SET forwardable = 0 WHERE site_id = $1 AND visitor = ANY($2::bigint[]) AND forwardable = 1",
                                 [.text(t.site), .array(t.withdrawn.sorted())])
        }
        var sites: [String?] = [], days: [Int64?] = [], metrics: [String?] = [], counts: [Int64?] = []
        for t in tallies {
            for day in t.counts.keys.sorted() {
                for (metric, n) in t.counts[day]!.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                    sites.append(t.site); days.append(day); metrics.append(metric.rawValue); counts.append(Int64(n))
                }
            }
        }
        guard !sites.isEmpty else { return }
        try connection.query("""
            INSERT INTO consent_counts (site_id, day, metric, n) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[])
            ON CONFLICT (site_id, day, metric) DO UPDATE SET n = consent_counts.n + excluded.n
            """, [.array(sites), .array(days), .array(metrics), .array(counts)])
    }
}

extension UInt8 {
    /// A signed 32-bit lock key from four bytes (of a batch's random id).
    fileprivate func lockKeyPart(_ b: UInt8, _ c: UInt8, _ d: UInt8) -> Int64 {
        Int64(Int32(bitPattern: UInt32(self) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)))
    }
}

private struct SiteVisitor: Hashable { let site: String; let visitor: Int64 }
private struct SiteClientID: Hashable { let site: String; let id: String }
private struct SiteDay: Hashable { let site: String; let day: Int64 }

extension PostgresDatabase: EventReader {
    public func eventCount(site: String?) throws -> Int {
        Int(try query("SELECT count(*) FROM events WHERE $1::text IS NULL OR site_id = $1", [PostgresValue(site)]).int(0, 0) ?? 0)
    }

    public func clientIDs(site: String) throws -> Set<String> {
        Set(try query("SELECT client_id FROM events WHERE site_id = $1 AND client_id IS NOT NULL", [.text(site)]).rows.compactMap { $0[0] })
    }

    public func events(site: String) throws -> [EventRow] {
        let rows = try query("SELECT \(eventColumns) FROM events WHERE site_id = $1 ORDER BY id", [.text(site)])
        return rows.rows.indices.map { i in
            let t = { (c: Int) in rows.text(i, c) }, n = { (c: Int) in rows.int(i, c) }
            var e = EventRow(siteID: t(1) ?? "", clientID: t(2), timestamp: n(3) ?? 0, name: t(4) ?? "", path: t(5) ?? "",
                             decision: EventRow.Decision(rawValue: t(6) ?? "") ?? .anonymous, visitor: n(7) ?? 0, sourceType: t(20) ?? "")
            e.sessionID = n(8); e.subject = n(9); e.country = t(10); e.region = t(11); e.city = t(12); e.asn = n(13); e.asnOrg = t(14)
            e.browser = t(15); e.browserVersion = t(16); e.os = t(17); e.device = t(18); e.screen = t(19)
            e.referrerHost = t(21); e.referrerPath = t(22); e.utmSource = t(23); e.utmMedium = t(24); e.utmCampaign = t(25)
            e.utmTerm = t(26); e.utmContent = t(27); e.clickIDKind = t(28); e.clickID = t(29); e.props = t(30)
            e.value = t(31).flatMap(Double.init); e.currency = t(32); e.engagedMs = n(33); e.scroll = n(34); e.emailHash = n(35)
            e.channel = t(36); e.sourceName = t(37)
            return e
        }
    }

    public func sessions(site: String) throws -> [SessionRow] {
        let rows = try query("""
            SELECT id, site_id, visitor, subject, decision, started_at, last_seen, entry_path, exit_path, pageviews, interactions,
              engaged_ms, duration_ms, bounce
            FROM sessions WHERE site_id = $1 ORDER BY id
            """, [.text(site)])
        return rows.rows.indices.map { i in
            let n = { (c: Int) in rows.int(i, c) ?? 0 }
            return SessionRow(id: n(0), siteID: rows.text(i, 1) ?? "", visitor: n(2), subject: rows.int(i, 3), decision: rows.text(i, 4) ?? "",
                              startedAt: n(5), lastSeen: n(6), entryPath: rows.text(i, 7), exitPath: rows.text(i, 8), pageviews: n(9),
                              interactions: n(10), engagedMs: n(11), durationMs: n(12), bounce: n(13) == 1)
        }
    }

    public func consentDays(site: String, from: Int64, to: Int64) throws -> [ConsentDay] {
        let rows = try query("SELECT day, metric, n FROM consent_counts WHERE site_id = $1 AND day BETWEEN $2 AND $3",
                             [.text(site), .int(from), .int(to)])
        var days: [Int64: [ConsentMetric: Int]] = [:]
        for i in rows.rows.indices {
            guard let day = rows.int(i, 0), let metric = rows.text(i, 1).flatMap(ConsentMetric.init(rawValue:)) else { continue }
            days[day, default: [:]][metric] = Int(rows.int(i, 2) ?? 0)
        }
        return days.keys.sorted().map { ConsentDay(day: $0, counts: days[$0]!) }
    }
}
