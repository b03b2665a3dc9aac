import Foundation
import Testing
import TestSupport

/// The README's "Running it" section, done as written — its exports pointed at the test servers
/// (Redis, a PostgreSQL database of its own, level directories of its own), its commands in order,
/// the long-running ones left running — and then a count submitted over HTTP moves a file.
@Suite struct ReadmeWalkTests {
    @Test func theRunningItSectionWorksAsWritten() throws {
        let lines = try HelpTests.readmeBlock(after: "## Running it")
        let database = try TestDatabase(.postgres)
        defer { database.drop() }
        let cli = try CLIWorkspace()
        defer { cli.stop() }

        var commands: [[String]] = []
        for raw in lines {
            let line = String(raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("export ") {
                let assignment = line.dropFirst("export ".count).split(separator: "=", maxSplits: 1).map(String.init)
                let (name, value) = (assignment[0], assignment.count > 1 ? assignment[1] : "")
                switch name {
                case "REDIS_URL": cli.environment[name] = try TestEnvironment.value("RELOCATOR_TEST_REDIS_URL")
                case "DATABASE_URL":
                    #expect(value.hasPrefix("postgres://"), "the README's example database is PostgreSQL: \(value)")
                    cli.environment[name] = TestDatabase.text(database.url)
                case "RELOCATOR_LEVELS":
                    let names = value.split(separator: ",").map { String($0.split(separator: "=")[0]) }
                    cli.environment[name] = try cli.makeLevels(names)
                default: cli.environment[name] = value
                }
                continue
            }
            var words = line.split(separator: " ").map(String.init)
            #expect(words.first == "relocator", "an unexpected line in 'Running it': \(line)")
            words.removeFirst()
            if let port = words.firstIndex(of: "--port"), port + 1 < words.count { words[port + 1] = String(try freeLoopbackPort()) }
            commands.append(words)
        }
        #expect(commands.map { $0.first ?? "" } == ["migrate", "levels", "serve", "worker", "committer"], "\(commands)")

        var apiPort: Int?
        for (index, arguments) in commands.enumerated() {
            switch arguments.first {
            case "serve", "worker", "committer":
                let name = "step\(index)"
                let process = try cli.start(name, arguments)
                if arguments.first == "serve" {
                    try cli.waitUntil("the API to listen") { cli.stdout(name).contains("listening on http://") || !process.isRunning }
                    apiPort = Int(cli.stdout(name).split(separator: "\n").first { $0.hasPrefix("listening on") }?.split(separator: ":").last ?? "")
                }
                #expect(process.isRunning, "relocator \(arguments.joined(separator: " ")): \(cli.stderr(name))")
            default:
                let result = try cli.run(arguments)
                #expect(result.status == 0, "relocator \(arguments.joined(separator: " ")): \(result.stderr)")
            }
        }
        try cli.waitUntil("a worker and a committer in status") {
            let status = try cli.run(["status", "--json"])
            let json = try status.json() as? [String: Any]
            return json?["workers_running"] as? Int == 1 && json?["committers_running"] as? Int == 1
        }

        // A content on bronze, a count that belongs to gold, over HTTP.
        let port = try #require(apiPort)
        try Data(repeating: 9, count: 10_000).write(to: URL(fileURLWithPath: cli.levelPath("bronze") + "/walk.mp4"))
        #expect(try cli.run(["contents", "add", "--cid", "42", "--filename", "walk.mp4", "--level", "bronze"]).status == 0)
        #expect(try HTTP.postForm(port, "/post_sentence", [("cid", "42"), ("count", "20000")]).status == 200)
        try cli.waitUntil("the move's commit") { try cli.run(["relocations", "--cid", "42"]).lines.count == 2 }
        #expect(FileManager.default.fileExists(atPath: cli.levelPath("gold") + "/walk.mp4"))
        #expect(!FileManager.default.fileExists(atPath: cli.levelPath("bronze") + "/walk.mp4"))
        let content = try #require(try cli.run(["contents", "list", "--json"]).json() as? [[String: Any]])
        #expect(content.first?["level"] as? String == "gold")
    }
}
