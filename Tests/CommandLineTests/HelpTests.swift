import Foundation
import Synchronization
import Testing
import TestSupport

/// The command reference cannot drift from the binary: every command's `--help` is compared with
/// `Help/<command>.txt`, every option has help text, `Help/summary.txt` holds each command's usage
/// line (the README's "Command line" block is pasted from it), and what the README names exists.
///
/// After changing a command, `RELOCATOR_UPDATE_HELP=1 swift test --filter HelpTests` writes the
/// files again; review them with `git diff`.
@Suite struct HelpTests {
    static let helpDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Help")
    static var updating: Bool { ProcessInfo.processInfo.environment["RELOCATOR_UPDATE_HELP"] == "1" }

    /// Every command's help, read once.
    static let helps = Mutex<[[String]: String]>([:])

    /// `--help` of a command (`[]` is the root), with a terminal 100 columns wide.
    static func help(_ path: [String]) throws -> String {
        if let known = helps.withLock({ $0[path] }) { return known }
        let text = try readHelp(path)
        helps.withLock { $0[path] = text }
        return text
    }

    private static func readHelp(_ path: [String]) throws -> String {
        let environment = ["COLUMNS": "100", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        let result = try CLIWorkspace.run(try TestEnvironment.relocatorBinary(), path + ["--help"], environment: environment,
                                          directory: nil, input: nil)
        guard result.status == 0 else { throw ClusterError("relocator \(path.joined(separator: " ")) --help: \(result.stderr)") }
        return result.stdout
    }

    /// The subcommand names a help text lists.
    static func subcommands(in help: String) -> [String] {
        guard let start = help.range(of: "\nSUBCOMMANDS:\n") else { return [] }
        // The list ends at the first blank line.
        return help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).prefix { !$0.isEmpty }.compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = trimmed.split(separator: " ").first else { return nil }
            return String(name)
        }
    }

    /// Every command path, found from the root's help down.
    static func commands() throws -> [[String]] {
        var found: [[String]] = []
        var pending: [[String]] = [[]]
        while let path = pending.popLast() {
            guard path.count <= 3 else { throw ClusterError("commands nested deeper than expected: \(path)") }
            found.append(path)
            pending += subcommands(in: try help(path)).map { path + [$0] }
        }
        return found.sorted { $0.joined(separator: " ") < $1.joined(separator: " ") }
    }

    static func fileName(_ path: [String]) -> String { (["relocator"] + path).joined(separator: "-") + ".txt" }

    @Test func everyCommandsHelpMatchesItsReferenceFile() throws {
        let commands = try Self.commands()
        #expect(commands.count >= 20, "\(commands)")
        if Self.updating { try FileManager.default.createDirectory(at: Self.helpDirectory, withIntermediateDirectories: true) }
        for path in commands {
            let text = try Self.help(path)
            let file = Self.helpDirectory.appendingPathComponent(Self.fileName(path))
            if Self.updating {
                try text.write(to: file, atomically: true, encoding: .utf8)
                continue
            }
            let reference = try String(contentsOf: file, encoding: .utf8)
            #expect(text == reference, "relocator \(path.joined(separator: " ")) --help differs from Help/\(Self.fileName(path)); run RELOCATOR_UPDATE_HELP=1 swift test --filter HelpTests")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.helpDirectory.path).filter { $0.hasPrefix("relocator") }
        #expect(Set(files) == Set(commands.map(Self.fileName)), "reference files of commands that no longer exist")
    }

    /// The options most commands share, left out of the summary's lines (its last line names them).
    static let sharedOptions = ["[--redis-url <redis-url>] ", "[--prefix <prefix>] ", "[--database-url <database-url>] ",
                                "[--log-format <log-format>] ", " [--log-format <log-format>]"]

    /// The usage line of every command without subcommands, one per line, without the shared options.
    static func summary() throws -> String {
        var lines: [String] = []
        for path in try commands() {
            let text = try help(path)
            guard subcommands(in: text).isEmpty, let usage = text.split(separator: "\n").first(where: { $0.hasPrefix("USAGE: ") }) else { continue }
            var line = String(usage.dropFirst("USAGE: ".count))
            for shared in sharedOptions { line = line.replacingOccurrences(of: shared, with: "") }
            lines.append(line)
        }
        lines.append("(each also takes --redis-url, --prefix and --database-url where it uses them, and --log-format)")
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func theSummaryHoldsTheUsageOfEveryCommand() throws {
        let summary = try Self.summary()
        let file = Self.helpDirectory.appendingPathComponent("summary.txt")
        if Self.updating {
            try FileManager.default.createDirectory(at: Self.helpDirectory, withIntermediateDirectories: true)
            return try summary.write(to: file, atomically: true, encoding: .utf8)
        }
        #expect(summary == (try String(contentsOf: file, encoding: .utf8)), "run RELOCATOR_UPDATE_HELP=1 swift test --filter HelpTests")
        for command in ["serve", "worker", "committer", "migrate", "enqueue", "status", "dlq list", "dlq replay", "dlq purge", "levels show",
                        "levels set", "contents list", "contents add", "contents import", "relocations", "reconcile", "why", "pause", "resume",
                        "checksum"] {
            #expect(summary.contains("relocator \(command) "), "\(command)")
        }
    }

    @Test func everyOptionAndArgumentHasHelpText() throws {
        for path in try Self.commands() {
            let lines = try Self.help(path).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var section = ""
            for (index, line) in lines.enumerated() {
                if !line.hasPrefix(" "), line.hasSuffix(":") { section = line }
                guard section == "OPTIONS:" || section == "ARGUMENTS:", line.hasPrefix("  "), !line.hasPrefix("   ") else { continue }
                let name = line.trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("-h, --help") || name.hasPrefix("--version") { continue }
                // Help text starts at column 26 on the same line, or on the next, indented line.
                let characters = Array(line)
                let sameLine = characters.count > 26 && characters[25] == " " && characters[26] != " "
                let nextLine = index + 1 < lines.count && lines[index + 1].hasPrefix("        ")
                #expect(sameLine || nextLine, "relocator \(path.joined(separator: " ")): '\(name)' has no help text")
            }
        }
    }

    /// Options that take a value and have no default: required, a filter, or a setting left as it is.
    static let withoutDefault: Set<String> = [
        "--cid", "--count", "--hits", "--file", "--filename", "--level", "--min", "--max", "--high-water", "--low-water",
        "--min-residency", "--hysteresis", "--max-moves", "--bandwidth", "--priority",
    ]

    /// Every option that takes a value says its default (swift-argument-parser prints it unless the
    /// option parses with a transform, whose help then says it).
    @Test func everyOptionWithADefaultShowsIt() throws {
        var helps: [[String]: [String: String]] = [:]
        for path in try Self.commands() {
            // Each option that takes a value, with its help text on one line.
            var section = "", options: [String: String] = [:], current: String?
            for line in try Self.help(path).split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
                if !line.hasPrefix(" "), line.hasSuffix(":") { section = line }
                guard section == "OPTIONS:" else { continue }
                if line.hasPrefix("  --"), !line.hasPrefix("   ") {
                    let name = String(line.dropFirst(2).prefix { $0 != " " })
                    current = line.contains("<") ? name : nil
                    if let current { options[current] = line }
                } else if line.hasPrefix("      "), let current {
                    options[current]! += " " + line.trimmingCharacters(in: .whitespaces)
                }
            }
            helps[path] = options
            for (name, text) in options.sorted(by: { $0.key < $1.key }) where !Self.withoutDefault.contains(name) {
                #expect(text.contains("default: "), "relocator \(path.joined(separator: " ")) \(name): \(text)")
            }
        }
        let expected = [(["serve"], "--port", "8080"), (["worker"], "--concurrency", "4"), (["worker"], "--grace-period", "30"),
                        (["committer"], "--batch", "500"), (["contents", "list"], "--limit", "100"), (["relocations"], "--limit", "20")]
        for (path, option, value) in expected {
            let text = try #require(helps[path]?[option], "relocator \(path.joined(separator: " ")) \(option)")
            #expect(text.hasSuffix("(default: \(value))"), "relocator \(path.joined(separator: " ")) \(option): \(text)")
        }
    }

    @Test func everyCommandTakesTheLogFormat() throws {
        for path in try Self.commands() {
            let text = try Self.help(path)
            guard Self.subcommands(in: text).isEmpty else { continue }
            #expect(text.contains("--log-format <log-format>"), "relocator \(path.joined(separator: " "))")
        }
    }

    // MARK: - The README

    /// The lines of a fenced block that follows `heading` in README.md.
    static func readmeBlock(after heading: String) throws -> [String] {
        let readme = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "\n\(heading)\n"), "README.md has no '\(heading)' section")
        let rest = readme[section.upperBound...]
        let open = try #require(rest.range(of: "```"))
        let body = rest[open.upperBound...].drop { $0 != "\n" }.dropFirst()
        let close = try #require(body.range(of: "```"))
        return body[..<close.lowerBound].split(separator: "\n").map(String.init)
    }

    @Test func whatTheReadmesCommandLineBlockNamesExists() throws {
        let commands = try Self.commands()
        for line in try Self.readmeBlock(after: "## Command line") {
            let words = line.split(separator: " ").map(String.init)
            guard words.first == "relocator", words.count > 1 else { continue }
            // The longest command path the line starts with.
            var path = [words[1]]
            if words.count > 2, commands.contains(path + [words[2]]) { path.append(words[2]) }
            #expect(commands.contains(path), "README names 'relocator \(path.joined(separator: " "))', which does not exist")
            guard commands.contains(path) else { continue }
            // Its options and those of its subcommands.
            let helps = try commands.filter { $0.starts(with: path) }.map { try Self.help($0) }.joined(separator: "\n")
            let given = Set(line.matches(of: /--[a-z][a-z-]*/).map({ String($0.output) }))
            for flag in given.sorted() {
                #expect(helps.contains(flag + " ") || helps.contains(flag + "\n") || helps.contains(flag + ","),
                        "README gives 'relocator \(path.joined(separator: " ")) \(flag)', which it does not take")
            }
            // And every flag of its own but those all commands share (a line that says
            // `[<options>]` names them elsewhere).
            guard !line.contains("[<options>]") else { continue }
            let shared: Set = ["--redis-url", "--prefix", "--database-url", "--log-format", "--help", "--version"]
            let own = try Self.help(path).split(separator: "\n").compactMap { $0.firstMatch(of: /^  (--[a-z][a-z-]*)/).map { String($0.output.1) } }
            for flag in own where !shared.contains(flag) && !given.contains(flag) {
                Issue.record("README's line for 'relocator \(path.joined(separator: " "))' lacks \(flag), which it takes")
            }
        }
    }
}
