import ArgumentParser
import Foundation
import Logging

@main
struct Candor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "candor",
        abstract: "Self-hosted, privacy-first, consent-aware web analytics.",
        subcommands: [Serve.self, Initialize.self, Sites.self, RotateSalt.self, Forget.self, Requests.self, Export.self,
                      Purge.self, Audit.self, Keys.self, ProcessingRecord.self, Hooks.self, Conversions.self,
                      CommissionCommand.self, DestinationsCommand.self, AlertsCommand.self, ReportsCommand.self, Users.self, Classify.self, ImportCommand.self, Bench.self])
}

/// Options shared by every command that opens the data directory.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "Data directory holding candor.sqlite (env CANDOR_DATA).")
    var data: String = env("CANDOR_DATA") ?? "./var"

    @Option(name: .long, help: "Directory of policy files NAME.toml (env CANDOR_POLICIES).")
    var policies: String = env("CANDOR_POLICIES") ?? "./policies"

    var databasePath: String { (data as NSString).appendingPathComponent("candor.sqlite") }

    func ensureDirectory() throws {
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
    }
}

func env(_ name: String) -> String? {
    ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
}
