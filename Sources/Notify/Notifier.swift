import AsyncHTTPClient
public import Foundation
import JSONOutput
public import Logging
import NIOCore
import NIOHTTP1
public import Privacy
public import Store
import Storage

/// Sends alerts: by e-mail to the accounts that asked for them and may see the site (owners and
/// admins for the install's rules), and to the site's and the install's channels (Slack, Teams,
/// signed webhooks). Returns a short account of where each went, for the history.
public final class Notifier: Sendable {
    let database: AppDatabase
    let mailer: Mailer?
    let box: SecretBox?
    let logger: Logger
    /// Whether an account reads a site's exact figures (alert messages hold exact counts).
    let readsExactFigures: @Sendable (User, Site) -> Bool

    public init(database: AppDatabase, mailer: Mailer?, box: SecretBox?, logger: Logger,
                readsExactFigures: @escaping @Sendable (User, Site) -> Bool) {
        self.database = database; self.mailer = mailer; self.box = box; self.logger = logger; self.readsExactFigures = readsExactFigures
    }

    /// The e-mail addresses an alert goes to: accounts that asked for alerts and read the site's
    /// exact figures (owners and admins alone for the install's rules).
    public func recipients(site: String?) throws -> [String] {
        let watched = try site.flatMap { try database.site(id: $0) }
        return try database.alertEmailUsers().filter { u in
            // Owners and admins get every rule's alerts, the install's included.
            if u.role == .owner || u.role == .admin { return true }
            guard let watched, readsExactFigures(u, watched) else { return false }
            return try database.visibleSiteIDs(user: u).contains(watched.id)
        }.map(\.email)
    }

    public func send(_ alert: Alert) async -> String {
        var outcomes: [String] = []
        let siteName = (try? alert.rule.siteID.flatMap { try database.site(id: $0)?.name }) ?? nil
        let text = alert.message + "\n\n" + (siteName.map { "Site: \($0)\n" } ?? "") + "Rule: \(alert.rule.kind), threshold \(alert.rule.threshold), "
            + "cooldown \(alert.rule.cooldownMinutes) min (\(alert.rule.id))\nAt: \(ISO.string(alert.at))\n"
        do {
            let to = try recipients(site: alert.rule.siteID)
            if !to.isEmpty {
                if let mailer {
                    // One message per recipient: no one sees the others' addresses, and one refused
                    // address stops no other message.
                    var delivered = 0
                    for address in to {
                        do {
                            try await mailer.send(to: [address], subject: alert.subject + (siteName.map { " — \($0)" } ?? ""), text: text)
                            delivered += 1
                        } catch {
                            logger.error("alert e-mail failed", metadata: ["error": "\(error)"])
                        }
                    }
                    outcomes.append(delivered == to.count ? "email:\(delivered)" : "email:\(delivered)/\(to.count)")
                } else {
                    outcomes.append("email:no-smtp")
                }
            }
            let channels = try database.notificationChannels().filter { $0.siteID == nil || $0.siteID == alert.rule.siteID }
            if !channels.isEmpty {
                // Alerts are rare: a client per alert, shut down after it (no redirects followed).
                var configuration = HTTPClient.Configuration()
                configuration.timeout = .init(connect: .seconds(5), read: .seconds(15))
                configuration.redirectConfiguration = .disallow
                let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
                for channel in channels { outcomes.append("\(channel.kind):" + (await post(alert, text: text, to: channel, client))) }
                try? await client.shutdown()
            }
        } catch {
            logger.error("alert delivery failed", metadata: ["error": "\(error)"])
            outcomes.append("error")
        }
        return outcomes.joined(separator: " ")
    }

    /// Posts to one channel; "ok", or why not.
    func post(_ alert: Alert, text: String, to channel: NotificationChannel, _ client: HTTPClient) async -> String {
        guard let box, let url = try? box.open(channel.sealedURL) else { return "sealed" }
        let body: String
        switch channel.kind {
        case "slack":
            // Visitor-sent values (sources, pages) are in the text: Slack's control characters escaped.
            body = JSON.object([("text", .string("*\(alert.subject)*\n\(Self.slackEscaped(text))"))]).text
        case "teams":
            // Teams incoming webhooks (and Workflows' "post to a channel when a webhook request is received") take a MessageCard.
            body = JSON.object([("@type", "MessageCard"), ("@context", "https://schema.org/extensions"), ("summary", .string(alert.subject)),
                                ("themeColor", .string(alert.firing ? "D83B01" : "2EB886")), ("title", .string(alert.subject)),
                                ("text", .string(Self.teamsEscaped(text)))]).text
        default:
            body = JSON.object([("event", .string(alert.firing ? "alert.fired" : "alert.resolved")), ("rule", .string(alert.rule.id)),
                                ("kind", .string(alert.rule.kind)), ("site", alert.rule.siteID.map { .string($0) } ?? .null),
                                ("message", .string(alert.message)), ("at", .string(ISO.string(alert.at)))]).text
        }
        var request = HTTPClientRequest(url: String(decoding: url, as: UTF8.self))
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Candor")
        if channel.kind == "webhook", let sealed = channel.sealedSecret, let secret = try? box.open(sealed) {
            let t = alert.at / 1000
            request.headers.add(name: "X-Candor-Signature", value: "t=\(t),v1=\(Hex.encode(Sodium.hmacSHA256(key: secret, message: Array("\(t).\(body)".utf8))))")
        }
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(15))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            return (200..<300).contains(Int(response.status.code)) ? "ok" : "HTTP \(response.status.code)"
        } catch {
            logger.warning("alert channel failed", metadata: ["channel": "\(channel.id)", "error": "\(error)"])
            return "failed"
        }
    }

    /// Text for Slack's mrkdwn: `&`, `<` and `>` escaped (no mention, link or command from a value).
    static func slackEscaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Text for a Teams MessageCard (HTML and Markdown): HTML escaped, Markdown's characters
    /// backslashed, line breaks as <br>.
    static func teamsEscaped(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n": out += "<br>"
            case "\\", "`", "*", "_", "[", "]", "(", ")", "#", "!", "|", "~": out += "\\" + String(c)
            default: out.append(c)
            }
        }
        return out
    }
}
