import Actions
import ArgumentParser
import Foundation
import Notify
import Privacy
import Store
import Storage

struct AlertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "Alert rules, channels (Slack, Teams, signed webhooks) and who gets alert e-mail.",
        subcommands: [Add.self, List.self, Remove.self, ChannelAdd.self, ChannelRemove.self, Email.self, History.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a rule; prints its id.")
        @OptionGroup var data: DataOptions
        @Option(help: "\(AlertKind.allCases.map { "\($0.rawValue) (\($0.thresholdMeaning)\($0.siteScoped ? ", a site" : ""))" }.joined(separator: ", ")).")
        var kind: String
        @Option(help: "Site id (silent, spike and drop watch a site; the others the install).") var site: String?
        @Option(help: "The threshold, in the kind's unit.") var threshold: Double
        @Option(help: "Minutes of quiet after the rule fires or resolves.") var cooldown: Int = 60

        func run() throws {
            guard let k = AlertKind(rawValue: kind) else { throw ValidationError("--kind is one of \(AlertKind.allCases.map(\.rawValue).joined(separator: ", "))") }
            let rule = try Office(data).administration.addAlertRule(site: site, kind: k.rawValue, siteScoped: k.siteScoped, threshold: threshold,
                                                                   cooldownMinutes: cooldown, by: .cli)
            print(rule.id)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List rules and channels.")
        @OptionGroup var data: DataOptions

        func run() throws {
            let database = try Office(data).database
            for r in try database.alertRules() {
                print(["rule", r.id, r.siteID ?? "*", r.kind, "\(r.threshold)", "\(r.cooldownMinutes)min",
                       r.firingSince.map { "firing since \(ISO.string($0))" } ?? "quiet"].joined(separator: "\t"))
            }
            for c in try database.notificationChannels() { print(["channel", c.id, c.siteID ?? "*", c.kind, c.label].joined(separator: "\t")) }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a rule.")
        @OptionGroup var data: DataOptions
        @Option(help: "Rule id.") var id: String

        func run() throws { try Office(data).administration.removeAlertRule(id: id, by: .cli) }
    }

    struct ChannelAdd: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "channel-add", abstract: "Add a channel; prints its id.")
        @OptionGroup var data: DataOptions
        @Option(help: "slack, teams or webhook.") var kind: String
        @Option(help: "Site id (the site's alerts), or none: every alert.") var site: String?
        @Option(help: "A name for the list.") var label: String = ""
        @Option(name: .customLong("url-env"), help: "Environment variable holding the webhook URL (a secret for Slack and Teams).") var urlEnv: String
        @Option(name: .customLong("secret-env"), help: "Environment variable holding the signing secret (webhook).") var secretEnv: String?

        func run() throws {
            guard let url = env(urlEnv) else { throw ValidationError("\(urlEnv) is not set") }
            let office = try Office(data)
            let box = try SecretBox.load(directory: data.data, database: office.database)
            let channel = try office.administration.addNotificationChannel(site: site, kind: kind, label: label, url: url,
                                                                           secret: secretEnv.flatMap(env), box: box, by: .cli)
            print(channel.id)
        }
    }

    struct ChannelRemove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "channel-remove", abstract: "Remove a channel.")
        @OptionGroup var data: DataOptions
        @Option(help: "Channel id.") var id: String

        func run() throws { try Office(data).administration.removeNotificationChannel(id: id, by: .cli) }
    }

    struct Email: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Turn an account's alert e-mail on or off.")
        @OptionGroup var data: DataOptions
        @Option(help: "E-mail of the account.") var email: String
        @Option(help: "on or off.") var set: String

        func run() throws {
            guard set == "on" || set == "off" else { throw ValidationError("--set is on or off") }
            try Office(data).administration.setAlertEmails(email: email, set == "on", by: .cli)
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What fired and resolved, newest first.")
        @OptionGroup var data: DataOptions
        @Option(help: "How many entries.") var limit: Int = 50

        func run() throws {
            for h in try Office(data).database.alertHistory(limit: limit) {
                print([ISO.string(h.at), h.ruleID, h.siteID ?? "*", h.kind, h.state, h.delivered, h.message].joined(separator: "\t"))
            }
        }
    }
}
