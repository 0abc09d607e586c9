import Actions
import Consent
import Foundation
import Hummingbird
import HTTPTypes
import Integrations
import JSONOutput
import NIOCore
import Privacy
import Storage
import Store

/// The privacy center, pipeline health and the clients (commission) pages.
extension DashboardRoutes {
    // MARK: Pipeline health (owner, admin)

    func pipelineHealth(_ v: Viewer) throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        var c = base(v, title: "Pipeline health")
        let h = health()
        let samples = h?.samples ?? []
        let reasons = Set(samples.flatMap { $0.dropped.keys }).sorted()
        var minutes: [[String: Any]] = []
        for (a, b) in zip(samples, samples.dropFirst()) {
            let dropped = reasons.map { (b.dropped[$0] ?? 0) - (a.dropped[$0] ?? 0) }
            minutes.append(["at": self.when(Int64(b.at.timeIntervalSince1970 * 1000), v), "received": b.received - a.received,
                            "accepted": b.accepted - a.accepted, "dropped": dropped.map { ["n": $0] },
                            "rejected": b.rejected - a.rejected, "errors": b.errors - a.errors])
        }
        c["reasons"] = reasons.map { ["name": $0] }
        c["minutes"] = Array(minutes.reversed())
        c["hasMinutes"] = !minutes.isEmpty
        c["queueDepth"] = h?.queueDepth ?? 0
        c["p50"] = h?.commitP50Ms.map { String(format: "≤ %.1f ms", $0) } ?? "–"
        c["p99"] = h?.commitP99Ms.map { String(format: "≤ %.1f ms", $0) } ?? "–"
        c["geo"] = (h?.geo ?? []).map { ["label": $0.0, "value": $0.1] }
        c["datasets"] = (h?.datasets ?? []).map { ["label": $0.0, "value": $0.1] }
        c["botDrops"] = (h?.botDrops ?? []).map { ["layer": $0.layer, "count": $0.count] }
        c["webhooks"] = (h?.webhooks ?? []).map { ["provider": $0.provider, "outcome": $0.outcome, "count": $0.count,
                                                     "bad": !["stored", "duplicate", "ignored"].contains($0.outcome)] }
        c["deliveries"] = (h?.deliveries ?? []).map { ["kind": $0.kind, "outcome": $0.outcome, "count": $0.count,
                                                         "bad": ["retry", "dead"].contains($0.outcome)] }
        let runs = Dictionary(uniqueKeysWithValues: try database.jobRuns().map { ($0.name, $0) })
        c["jobs"] = [("Salt rotation", "salt_rotation"), ("Retention purge", "purge"), ("Deletion requests", "deletion_requests")].map { label, name in
            ["label": label, "at": runs[name].map { self.when($0.lastRunAt, v) } ?? "never", "detail": runs[name]?.detail ?? ""]
        }
        return html("health", c)
    }

    func privacyCenter(_ v: Viewer, message: String?, filed: String? = nil) throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        let t = Int64(now().timeIntervalSince1970 * 1000)
        var c = base(v, title: "Privacy center")
        if let message { c["message"] = message }
        // After filing (see fileRequest): the request named in the address, if the reader may see it.
        if let filed, let r = try database.privacyRequest(id: filed), v.may(see: r.siteID) {
            c["message"] = "Request \(r.id) received; deadline \(self.when(r.deadlineAt, v))."
        }
        let open = try database.privacyRequests(openOnly: true)
        c["hasRequests"] = !open.isEmpty
        c["requests"] = open.map { r -> [String: Any] in
            ["id": r.id, "site": r.siteID, "kind": r.subjectKind.rawValue, "status": r.status.rawValue, "received": self.when(r.receivedAt, v),
             "deadline": self.when(r.deadlineAt, v), "overdue": r.deadlineAt < t, "filedBy": r.filedBy]
        }
        c["done"] = try database.privacyRequests(limit: 20).filter { !$0.isOpen }.map { r -> [String: Any] in
            ["id": r.id, "site": r.siteID, "status": r.status.rawValue, "processed": r.processedAt.map { self.when($0, v) } ?? "",
             "reason": r.reason ?? "", "hasReceipt": r.receipt != nil]
        }
        c["sites"] = try database.sites().filter { v.may(see: $0.id) }.map { ["id": $0.id, "name": $0.name] }
        var retention: [[String: Any]] = []
        for site in try database.sites() {
            let policy = policies[site.policy] ?? .default
            for (cls, table) in [(DataClass.events, RetainedTable.events), (.sessions, .sessions), (.consentRecords, .consentRecords),
                                 (.conversions, .conversions), (.leads, .leads)] {
                let oldest = try database.oldest(table, site: site.id)
                let days = policy.retentionDays[cls]
                // In days, computed in floating point: a stored time far in the past cannot overflow here.
                let age = oldest.map { Int(max(0, min(Double(t) - Double($0), 1e15)) / 86_400_000) }
                retention.append(["site": site.name, "class": cls.rawValue, "limit": days.map { "\($0) days" } ?? "kept",
                                  "oldest": age.map { "\($0) days" } ?? "none", "over": (age ?? 0) > (days ?? .max)])
            }
        }
        c["retention"] = retention
        let runs = try database.jobRuns()
        c["jobs"] = runs.filter { !$0.name.hasPrefix("policy:") }.map { ["name": $0.name, "at": self.when($0.lastRunAt, v), "detail": $0.detail ?? ""] }
        let verification = try office.audit.verify()
        c["auditOK"] = verification.isIntact
        c["auditSummary"] = verification.isIntact
            ? "Intact: \(verification.entries) entries, head \(verification.head.map(Hex.encode) ?? "-")"
            : "BROKEN at entry \(verification.firstBroken ?? 0): \(verification.problem ?? "")"
        c["audit"] = try database.recentAuditEntries(limit: 30).map {
            ["seq": $0.seq, "at": self.when($0.timestamp, v), "actor": $0.actor, "action": $0.action, "site": $0.siteID ?? "", "detail": $0.detail]
        }
        return html("privacy", c)
    }

    /// The identifier a privacy-center form names (kind + value).
    func identifier(_ f: [String: String]) -> PrivacyOffice.Identifier? {
        let value = (f["value"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !value.isEmpty else { return nil }
        switch f["kind"] {
        case "subject": return .subject(value)
        case "email": return .email(value)
        case "user": return .userID(value)
        default: return nil
        }
    }

    /// A privacy-center form naming a site the user may see and a subject: checked once for both
    /// filing a request and exporting, then handed to `body`.
    func withSubjectForm(_ request: Request, _ v: Viewer,
                         _ body: ([String: String], String, PrivacyOffice.Identifier) throws -> Response) async throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        guard let site = f["site"], v.may(see: site), let id = identifier(f) else {
            return try privacyCenter(v, message: "Choose a site, the kind of identifier and its value.")
        }
        return try body(f, site, id)
    }

    func fileRequest(_ request: Request, _ v: Viewer) async throws -> Response {
        try await withSubjectForm(request, v) { _, site, id in
            do {
                let filed = try office.file(site: site, identifier: id, filedBy: "user:\(v.user.email)")
                // Post/redirect/get: reloading the page shows the request again, never files a second one.
                return Response(status: .seeOther, headers: [.location: "/privacy?filed=\(filed.id)"])
            } catch let error as PrivacyOfficeError {
                return try privacyCenter(v, message: "Not filed: \(error.description).")
            }
        }
    }

    func officerExport(_ request: Request, _ v: Viewer) async throws -> Response {
        try await withSubjectForm(request, v) { f, site, id in
            do {
                let export = try office.export(site: site, identifier: id, actor: "user:\(v.user.email)")
                if f["format"] == "csv", let name = f["table"], let table = export.table(name) {
                    return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .cacheControl: "no-store",
                                                            .contentDisposition: "attachment; filename=\"subject-\(site)-\(name).csv\""],
                                    body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(table))))
                }
                return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store",
                                                        .contentDisposition: "attachment; filename=\"subject-\(site).json\""],
                                body: .init(byteBuffer: ByteBuffer(string: export.json)))
            } catch let error as PrivacyOfficeError {
                return try privacyCenter(v, message: "No export: \(error.description).")
            }
        }
    }

    func receipt(_ v: Viewer, _ id: String) throws -> Response {
        guard v.isStaffAdmin, let r = try database.privacyRequest(id: id), v.may(see: r.siteID), let receipt = r.receipt else { return notFound() }
        return Response(status: .ok, headers: [.contentType: "application/json",
                                               .contentDisposition: "attachment; filename=\"receipt-\(r.id).json\""],
                        body: .init(byteBuffer: ByteBuffer(string: receipt)))
    }

    func clientDetail(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard readsCommission(v.user.role), v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let month = request.uri.queryParameters.get("month") ?? Commission.month(of: now(), in: site.calendar)
        guard let r = try Commission.report(database: database, site: site, month: month) else { return notFound() }
        if request.uri.queryParameters.get("format") == "csv" {
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                                    .contentDisposition: "attachment; filename=\"commission-\(site.id)-\(month).csv\""],
                            body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(r.table))))
        }
        var c = base(v, title: "\(site.name) — \(month)")
        func money(_ d: Double) -> String { Format.amount(d, r.terms.currency) }
        c["site"] = ["id": site.id, "name": site.name]
        c["month"] = month
        c.merge(Self.monthNavigation(month)) { $1 }
        c["figures"] = Format.commissionFigures(r).map { ["label": $0.label, "value": $0.value] }
        c["terms"] = "\(r.terms.percent) % of attributed revenue, \(money(r.terms.perLead)) per lead, \(money(r.terms.perCall)) per call, minimum \(money(r.terms.monthlyMinimum)); credit: \(r.terms.credit.rawValue) touch; our sources: \(r.terms.ourSources.isEmpty ? "every attributed conversion" : r.terms.ourSources.joined(separator: ", "))"
        c["lines"] = r.lines.map { line, counted -> [String: Any] in
            func touch(_ t: Touch?) -> String { t.map { [$0.sourceType, $0.utmSource, $0.utmCampaign].compactMap { $0 }.joined(separator: " / ") } ?? "–" }
            return ["time": Format.moment(line.timestamp, r.calendar), "provider": line.provider, "kind": line.kind.rawValue,
                    "value": Format.amount(line.value, line.currency ?? ""), "via": line.attributedVia,
                    "first": touch(line.firstTouch), "last": touch(line.lastTouch), "counted": counted ? "yes" : "no"]
        }
        c["empty"] = r.lines.isEmpty
        return html("client", c)
    }

    func runRequests(_ request: Request, _ v: Viewer) async throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        guard try await postedForm(request, v) != nil else { return invalidForm() }
        let report = await office.processOpenRequests(actor: "user:\(v.user.email)")
        return try privacyCenter(v, message: report.summary + ".")
    }

    /// The months before and after `month` (YYYY-MM) for the month picker.
    static func monthNavigation(_ month: String) -> [String: Any] {
        // The month's bounds as the commission reports read them (nil for anything else: the
        // text comes from the address); the months around are those of the instants beside them.
        guard let bounds = SiteCalendar.utc.bounds(month: month) else { return [:] }
        return ["previousMonth": SiteCalendar.utc.month(of: bounds.from - 1), "nextMonth": SiteCalendar.utc.month(of: bounds.to)]
    }

    func clients(_ request: Request, _ v: Viewer) throws -> Response {
        guard readsCommission(v.user.role) else { return notFound() }
        let month = request.uri.queryParameters.get("month") ?? Commission.month(of: now())
        var rows: [[String: Any]] = []
        for site in try database.sites() where v.may(see: site.id) {
            guard let r = try Commission.report(database: database, site: site, month: month) else { return notFound() }
            rows.append(["id": site.id, "name": site.name, "sales": r.sales, "leads": r.leads + r.calls,
                         "revenue": String(format: "%.2f", r.attributedRevenue), "commission": String(format: "%.2f %@", r.commission, r.terms.currency),
                         "unattributed": r.unattributed])
        }
        var c = base(v, title: "Clients")
        c["month"] = month
        c.merge(Self.monthNavigation(month)) { $1 }
        c["clients"] = rows
        c["empty"] = rows.isEmpty
        return html("clients", c)
    }
}
