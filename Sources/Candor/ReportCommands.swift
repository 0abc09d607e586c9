import Actions
import Admin
import ArgumentParser
import Foundation
import Notify
import Privacy
import Store
import Storage

/// The SMTP server Candor's e-mail goes through (`candor serve` and `candor reports`).
struct MailOptions: ParsableArguments {
    @Option(name: .customLong("smtp-url"),
            help: "SMTP server for alert and report e-mail: smtp://user:password@host:port (STARTTLS) or smtps://… (env CANDOR_SMTP_URL).")
    var smtpURL: String? = env("CANDOR_SMTP_URL")

    @Option(name: .customLong("smtp-from"), help: "Sender address of Candor's e-mail (env CANDOR_SMTP_FROM).")
    var smtpFrom: String? = env("CANDOR_SMTP_FROM")

    @Option(name: .customLong("smtp-starttls"),
            help: "For smtp:// URLs: required (refuse to send unencrypted), opportunistic, or off (a relay on this machine) (env CANDOR_SMTP_STARTTLS).")
    var smtpStartTLS: String = env("CANDOR_SMTP_STARTTLS") ?? "required"

    /// The mailer these options describe (nil without --smtp-url).
    func mailer() throws -> Mailer? {
        guard let url = smtpURL else { return nil }
        guard let from = smtpFrom else { throw UsageError(description: "--smtp-url needs --smtp-from (the sender address)") }
        guard let mode = Mailer.StartTLS(rawValue: smtpStartTLS) else { throw UsageError(description: "--smtp-starttls is required, opportunistic or off") }
        do { return try Mailer(url: url, from: from, startTLS: mode) } catch { throw UsageError(description: "--smtp-url/--smtp-from: \(error)") }
    }
}

struct ReportsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reports", abstract: "E-mail reports (PDF, chart, CSV).", subcommands: [SendNow.self, Subscribe.self])

    struct SendNow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "send-now", abstract: "Send a site's report of the last whole day, week or month now.")
        @OptionGroup var data: DataOptions
        @OptionGroup var mail: MailOptions
        @Option(help: "Site id (or --all-sites).") var site: String?
        @Flag(help: "The consolidated report of every site the recipient's account may read.") var allSites = false
        @Option(help: "Recipient; an account's address reads as its role does, any other as a client viewer (a site's report only).") var to: String
        @Option(help: "day, week or month.") var period: String = "week"
        @Flag(help: "Attach the top pages as CSV.") var csv = false

        func run() async throws {
            guard let p = ReportMaker.Period(rawValue: period) else { throw ValidationError("--period is day, week or month") }
            guard (site == nil) == allSites else { throw ValidationError("give either --site or --all-sites") }
            guard !(allSites && csv) else { throw ValidationError("--csv is for a site's report (its top pages)") }
            guard let mailer = try mail.mailer() else { throw ValidationError("give --smtp-url and --smtp-from (or CANDOR_SMTP_URL, CANDOR_SMTP_FROM)") }
            let office = try Office(data)
            let maker = ReportMaker(database: office.database, policies: office.policies)
            let made: ReportMaker.Made
            if let site {
                guard let s = try office.database.site(id: site) else { throw ValidationError("no site \(site)") }
                // An account that may not read the site reads as an address without an account (a client viewer).
                let account = try office.database.user(email: to)
                let reader = try account.flatMap { try office.database.visibleSiteIDs(user: $0).contains(s.id) ? $0 : nil }
                made = try maker.make(site: s, period: p, reader: reader, csv: csv)
            } else {
                guard let reader = try office.database.user(email: to) else {
                    throw ValidationError("the consolidated report goes to an account (it lists the sites the account may read); no account \(to)")
                }
                made = try maker.makeConsolidated(period: p, reader: reader)
            }
            try await mailer.send(to: [to], subject: made.subject, text: made.text, attachments: made.attachments)
            print("sent\t\(to)\t\(SiteCalendar.dateText(made.first))\t\(SiteCalendar.dateText(made.last))\t\(made.attachments.map(\.name).joined(separator: ","))")
        }
    }

    struct Subscribe: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Schedule a site's report for an account (sent by candor serve after each whole period).")
        @OptionGroup var data: DataOptions
        @Option(help: "E-mail of the account.") var email: String
        @Option(help: "Site id (or --all-sites).") var site: String?
        @Flag(help: "The consolidated report of every site the account may read.") var allSites = false
        @Option(help: "day, week or month.") var period: String = "week"
        @Flag(help: "Attach the top pages as CSV (a site's report).") var csv = false

        func run() throws {
            guard let p = ReportMaker.Period(rawValue: period) else { throw ValidationError("--period is day, week or month") }
            guard (site == nil) == allSites else { throw ValidationError("give either --site or --all-sites") }
            guard !(allSites && csv) else { throw ValidationError("--csv is for a site's report (its top pages)") }
            let database = try Office(data).database
            guard let user = try database.user(email: email), let id = user.id else { throw ValidationError("no account \(email)") }
            if let site, try database.site(id: site) == nil { throw ValidationError("no site \(site)") }
            let s = ReportSubscription(id: Hex.encode(Sodium.randomBytes(8)), userID: id, siteID: site, period: p.rawValue, csv: csv,
                                       createdAt: Int64(Date().timeIntervalSince1970 * 1000))
            try database.insertReportSubscription(s)
            print(s.id)
        }
    }
}
