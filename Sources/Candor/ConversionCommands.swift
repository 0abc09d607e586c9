import Actions
import ArgumentParser
import Foundation
import Integrations
import JSONOutput
import Privacy
import Store
import Storage

struct Hooks: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Webhook sources per site.", subcommands: [Set.self, List.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Configure a provider for a site; prints the URL path to give the provider and the secret.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        @Option(help: "stripe, shopify, typeform, jotform, callrail or generic.") var provider: String
        @Option(help: "The provider's signing secret (Stripe whsec_…, Shopify app secret, Typeform secret, CallRail signing key); generated when left out (jotform, generic).")
        var secret: String?

        func run() throws {
            guard let p = Provider(rawValue: provider) else {
                throw UsageError(description: "provider must be one of \(Provider.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let value = try Office(data).administration.setWebhook(site: site, provider: p, secret: secret, by: .cli)
            let query = p == .jotform ? "?token=\(value)" : ""
            print("POST /hooks/\(p.rawValue)/\(site)\(query)")
            if secret == nil { print("secret: \(value)") }
            print("verification: \(p.scheme)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Providers configured for a site.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String

        func run() throws {
            for p in try Office(data).database.webhookProviders(site: site) { print("\(p)\t/hooks/\(p)/\(site)") }
        }
    }
}

struct Conversions: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Conversions from webhooks (tab-separated).")
    @OptionGroup var data: DataOptions
    @Option(help: "Site id.") var site: String
    @Option(help: "Only this month (YYYY-MM).") var month: String?

    func run() throws {
        let o = try Office(data)
        guard let s = try o.database.site(id: site) else { throw UsageError(description: "no site \(site)") }
        let (from, to) = try month.map { m in
            guard let b = s.calendar.bounds(month: m) else { throw UsageError(description: "--month must be YYYY-MM") }
            return b
        } ?? (Int64.min, Int64.max)
        print(["time", "provider", "external_id", "kind", "value", "currency", "attributed_via", "first", "last"].joined(separator: "\t"))
        for c in try o.database.conversions(site: site, from: from, to: to) {
            print([s.calendar.iso(c.timestamp), c.provider, c.externalID, c.kind.rawValue, String(c.value), c.currency ?? "",
                   c.attributedVia, c.firstTouch?.sourceType ?? "", c.lastTouch?.sourceType ?? ""].joined(separator: "\t"))
        }
    }
}

struct CommissionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commission", abstract: "Client terms and monthly commission reports.",
        subcommands: [Set.self, Report.self, Rollup.self, Clients.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a client site's attribution and commission terms.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        @Option(help: "Percent of attributed revenue.") var percent: Double = 0
        @Option(name: .customLong("per-lead"), help: "Fixed fee per attributed lead.") var perLead: Double = 0
        @Option(name: .customLong("per-call"), help: "Fixed fee per attributed call.") var perCall: Double = 0
        @Option(help: "Monthly minimum.") var minimum: Double = 0
        @Option(help: "Currency of the terms (ISO 4217).") var currency: String = "USD"
        @Option(name: .customLong("our-sources"),
                help: "Comma-separated matchers of the agency's work: source types (paid, social, email…), utm_source:X, utm_medium:X, utm_campaign:X, referrer:HOST. Empty: all attributed.")
        var ourSources: String = ""
        @Option(help: "Which touch gets the credit: first, last or either.") var credit: String = "last"
        @Option(help: "Attribution lookback window in days.") var lookback: Int = 30

        func run() throws {
            guard let c = ClientTerms.Credit(rawValue: credit) else { throw UsageError(description: "--credit must be first, last or either") }
            let terms = ClientTerms(siteID: site, lookbackDays: lookback, credit: c, percent: percent, perLead: perLead, perCall: perCall,
                                    monthlyMinimum: minimum, currency: currency.uppercased(),
                                    ourSources: ourSources.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            try Office(data).administration.setTerms(terms, by: .cli)
            print("terms saved for \(site)")
        }
    }

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A client's commission for a month: text, json or csv (one row per conversion).")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        @Option(help: "YYYY-MM in the site's time zone (default: this month).") var month: String?
        @Option(help: "text, json or csv.") var format: String = "text"

        func run() throws {
            let o = try Office(data)
            guard let s = try o.database.site(id: site) else { throw UsageError(description: "no site \(site)") }
            guard let r = try Commission.report(database: o.database, site: s, month: month ?? Commission.month(of: Date(), in: s.calendar)) else {
                throw UsageError(description: "--month must be YYYY-MM")
            }
            switch format {
            case "json": print(r.json.text)
            case "csv": print(try CSVRendering.text(r.table), terminator: "")
            default: print(text(r))
            }
        }
    }

    struct Rollup: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Commission of every client for a month, for invoicing: text, json or csv.")
        @OptionGroup var data: DataOptions
        @Option(help: "YYYY-MM (default: this month).") var month: String = Commission.month(of: Date())
        @Option(help: "text, json or csv.") var format: String = "text"

        func run() throws {
            let o = try Office(data)
            let reports = try o.database.sites().compactMap { try Commission.report(database: o.database, site: $0, month: month) }
            let table = ResultTable(name: "rollup-\(month)", columns: [
                "site", "client", "currency", "sales", "attributed_revenue", "our_leads", "our_calls", "commission",
            ], rows: reports.map { r in
                [.text(r.siteID), .text(r.siteName), .text(r.terms.currency), .integer(Int64(r.sales)),
                 .real((r.attributedRevenue * 100).rounded() / 100), .integer(Int64(r.ourLeads)), .integer(Int64(r.ourCalls)),
                 .real((r.commission * 100).rounded() / 100)]
            })
            switch format {
            case "json": print(JSON.object([("month", .string(month)), ("clients", .array(reports.map(\.json)))]).text)
            case "csv": print(try CSVRendering.text(table), terminator: "")
            default:
                for r in reports { print(text(r)); print("") }
            }
        }
    }

    struct Clients: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Client sites with status and lead/conversion counts (30 days, 90 days, all time).")
        @OptionGroup var data: DataOptions

        func run() throws {
            let o = try Office(data)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            print(["site", "client", "status", "leads 30d/90d/all", "sales 30d/90d/all", "webhooks"].joined(separator: "\t"))
            for s in try o.database.sites() {
                let all = try o.database.conversions(site: s.id)
                func count(_ kinds: Swift.Set<ConversionRow.Kind>, days: Int?) -> Int {
                    let since = days.map { now - Int64($0) * 86_400_000 } ?? .min
                    return all.filter { kinds.contains($0.kind) && $0.timestamp >= since }.count
                }
                let leads = [30, 90, nil].map { String(count([.lead, .call], days: $0)) }.joined(separator: "/")
                let sales = [30, 90, nil].map { String(count([.sale], days: $0)) }.joined(separator: "/")
                let lastEvent = switch try o.database.newest(.events, site: s.id) {
                case nil: "no events yet"
                case let t? where t >= now - 86_400_000: "active"
                default: "no events in 24 h"
                }
                print([s.id, s.name, lastEvent, leads, sales, try o.database.webhookProviders(site: s.id).joined(separator: ",")]
                    .joined(separator: "\t"))
            }
        }
    }
}

func text(_ r: CommissionReport) -> String {
    func money(_ d: Double) -> String { String(format: "%.2f %@", d, r.terms.currency) }
    return """
        \(r.siteName) (\(r.siteID)) — \(r.month)
          sales \(r.sales), revenue \(money(r.totalRevenue)), attributed to our sources \(money(r.attributedRevenue))
          leads \(r.ourLeads)/\(r.leads) ours, calls \(r.ourCalls)/\(r.calls) ours, unattributed \(r.unattributed)\
        \(r.otherCurrency > 0 ? ", \(r.otherCurrency) in another currency (left out)" : "")
          commission: \(r.terms.percent)% = \(money(r.percentPart)) + leads \(money(r.leadPart)) + calls \(money(r.callPart))\
        \(r.terms.monthlyMinimum > 0 ? ", minimum \(money(r.terms.monthlyMinimum))" : "") → \(money(r.commission))
        """
}
