public import Foundation
public import Store
import Storage

/// Keeps the daily rollups fresh: today's every run (the scheduler runs it every minute, so the
/// dashboard is at most a minute behind), yesterday's during the first two hours of a day (late
/// events, the salt overlap), and days that have events but no rollup yet, a few per run. Then
/// the analytics engine reloads every day whose rollup changed (all of them after a start), so
/// the dashboard's engine is as fresh as the rollups.
public enum RollupJob {
    @discardableResult
    public static func run(database: AppDatabase, now: Date, backfillPerRun: Int = 7, engine: Bool = true) throws -> String {
        let ms = Int64(now.timeIntervalSince1970 * 1000)
        var refreshed = 0
        var failure: (any Error)?
        do {
            // One site's failure (a site deleted meanwhile) does not hold up the others'.
            for site in try database.sites() {
                do {
                    // Today and yesterday are the site's own (its time zone).
                    let today = site.calendar.day(of: ms)
                    var days: Set<Int64> = [today]
                    if ms - site.calendar.start(of: today) < 2 * 3_600_000 { days.insert(today - 1) }
                    days.formUnion(try database.daysWithoutRollup(site: site.id, limit: backfillPerRun))
                    for day in days.sorted() {
                        try database.refreshRollup(site: site.id, day: day, now: ms)
                        refreshed += 1
                    }
                } catch {
                    failure = failure ?? error
                }
            }
        } catch {
            failure = error
        }
        guard engine else {
            if let failure { throw failure }
            return "\(refreshed) site-day(s) rolled up"
        }
        // The engine loads what is rolled up even when a refresh failed (it also ends the loading
        // state after a start; see FactStore.isLoading).
        let loaded = try database.facts.reconcile()
        if let failure { throw failure }
        return "\(refreshed) site-day(s) rolled up, \(loaded) loaded by the engine"
    }
}
