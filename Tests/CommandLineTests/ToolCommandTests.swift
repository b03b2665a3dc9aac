import Foundation
import Testing
import TestSupport

/// `checksum`, progress on long commands and `reconcile --json`.
@Suite struct ToolCommandTests {
    @Test func checksumGoesOnAfterAMissingFileAndExitsOneAtTheEndAsSha256sumDoes() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let a = cli.path + "/a.bin", b = cli.path + "/b.bin"
        try Data(repeating: 3, count: 70_000).write(to: URL(fileURLWithPath: a))
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: b))
        let result = try cli.run(["checksum", "--algorithm", "sha256", a, cli.path + "/nosuch", b])
        #expect(result.status == 1)
        let expected = try ProcessRunner.run(try #require(ProcessRunner.which("sha256sum")), [a, b])
        #expect(result.stdout == expected.stdout)
        #expect(result.errorLines == [
            "relocator checksum: cannot open \(cli.path)/nosuch: No such file or directory (ENOENT)",
            "Error: 1 of 3 files could not be read",
        ])
    }

    /// A name with a backslash, a line feed or a carriage return is written as sha256sum writes
    /// it (escaped, the line begun with a backslash): `sha256sum -c` checks the output.
    @Test func checksumWritesAnOddNameAsSha256sumDoesAndSha256sumChecksIt() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let names = [cli.path + "/new\nline", cli.path + "/back\\slash", cli.path + "/carriage\rreturn", cli.path + "/tab\tbed", cli.path + "/plain"]
        for (index, name) in names.enumerated() { try Data(repeating: UInt8(index), count: 1000 + index).write(to: URL(fileURLWithPath: name)) }
        let result = try cli.run(["checksum", "--algorithm", "sha256"] + names)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = try ProcessRunner.run(try #require(ProcessRunner.which("sha256sum")), names)
        #expect(result.stdout == expected.stdout)
        let list = cli.path + "/sums"
        try result.stdout.write(toFile: list, atomically: true, encoding: .utf8)
        let checked = try ProcessRunner.run(try #require(ProcessRunner.which("sha256sum")), ["-c", list])
        #expect(checked.status == 0, "\(checked.stdout) \(checked.stderr)")
        // A terminal's escape sequence is never written as it is (sha256sum would): shown escaped.
        let escape = cli.path + "/esc\u{1B}[31mred"
        try Data([1]).write(to: URL(fileURLWithPath: escape))
        let shown = try cli.run(["checksum", escape])
        #expect(shown.stdout.hasPrefix("\\") && shown.stdout.hasSuffix("  \(cli.path)/esc\\u{1B}[31mred\n"), "\(shown.stdout)")
    }

    /// A FIFO is refused as any file that is not a regular one, at once (its open waited for a
    /// writer for ever).
    @Test func checksumRefusesAFIFOWithoutWaitingForAWriter() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let fifo = cli.path + "/pipe"
        #expect(mkfifo(fifo, 0o600) == 0)
        let result = try cli.run(["checksum", fifo])
        #expect(result.status == 1)
        #expect(result.errorLines.first?.hasPrefix("relocator checksum: \(fifo) is ") == true, "\(result.stderr)")
    }

    @Test func checksumDefaultsToTheWorkersXXH128AndReadsStandardInput() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let file = cli.path + "/c.bin"
        try Data((0..<50_000).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: file))
        let sum = try TestFiles.xxh128(file)
        let named = try cli.run(["checksum", file])
        #expect(named.status == 0, "\(named.stderr)")
        #expect(named.stdout == "\(sum)  \(file)\n")
        // A pipe, and a file redirected to standard input.
        let piped = try cli.run(["checksum", "-"], input: "hello\n")
        #expect(piped.stdout == "\(try TestFiles.xxh128(try write(cli, "hello\n")))  -\n", "\(piped.stderr)")
        let redirected = try CLIWorkspace.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "\"$0\" checksum --algorithm sha256 - < \"$1\"",
                                                                               try TestEnvironment.relocatorBinary().path, file],
                                              environment: cli.environment, directory: cli.directory.url, input: nil)
        let expected = try ProcessRunner.run(try #require(ProcessRunner.which("sha256sum")), [file])
        #expect(redirected.stdout == expected.stdout.replacingOccurrences(of: file, with: "-"), "\(redirected.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("relocator-stdin-") }
        #expect(left.isEmpty, "\(left)")
    }

    private func write(_ cli: CLIWorkspace, _ text: String) throws -> String {
        let path = cli.path + "/text-\(text.count).txt"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func enqueueFileShowsProgressLinesWhenStandardErrorIsNotATerminal() throws {
        let cli = try ContentsTests.workspace()
        defer { cli.stop() }
        let rows = (1...1500).map { "\($0),f\($0).mp4,bronze" }.joined(separator: "\n")
        #expect(try cli.run(["contents", "import"], input: rows).status == 0)
        let result = try cli.run(["enqueue", "--file", "-"], input: (1...1500).map { "\($0),5000" }.joined(separator: "\n"))
        #expect(result.status == 0, "\(result.stderr)")
        let last = try #require(result.errorLines.last)
        #expect(last.hasPrefix("enqueue: 1500/1500 counts (100%)"), "\(result.stderr)")
        #expect(result.errorLines.filter { $0.hasPrefix("enqueue: 1500/1500") }.count == 1, "\(result.stderr)")
        #expect(!result.stderr.contains("\r"))
        #expect(result.stdout.contains("submitted 1500 counts: created 1500"), "\(result.stdout)")

        // A short run off a terminal stays quiet.
        let small = try cli.run(["enqueue", "--file", "-"], input: "1,50\n2,50\n")
        #expect(small.status == 0, "\(small.stderr)")
        #expect(small.stderr.isEmpty, "\(small.stderr)")
    }

    @Test func reconcileShowsItsProgressOverALargeTable() throws {
        let cli = try ContentsTests.workspace()
        defer { cli.stop() }
        cli.environment["RELOCATOR_LEVELS"] = try cli.makeLevels()
        #expect(try cli.run(["contents", "import"], input: (1...1200).map { "\($0),f\($0).mp4,bronze" }.joined(separator: "\n")).status == 0)
        let result = try cli.run(["reconcile", "--json"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.errorLines.last?.hasPrefix("reconcile: 1200/1200 contents (100%)") == true, "\(result.stderr)")
        #expect((try result.json() as? [String: Any])?["need_attention"] as? Int == 1200)
    }

    @Test func enqueueFileDrawsABarOnATerminal() throws {
        let cli = try ContentsTests.workspace()
        defer { cli.stop() }
        #expect(try cli.run(["contents", "import"], input: (1...20).map { "\($0),f\($0).mp4,bronze" }.joined(separator: "\n")).status == 0)
        try (1...20).map { "\($0),5000" }.joined(separator: "\n").write(toFile: cli.path + "/counts.csv", atomically: true, encoding: .utf8)
        // `script` gives the command a terminal.
        let script = try #require(ProcessRunner.which("script"))
        let command = "\(try TestEnvironment.relocatorBinary().path) enqueue --file counts.csv"
        let result = try CLIWorkspace.run(script, ["-q", "-e", "-c", command, "/dev/null"], environment: cli.environment,
                                          directory: cli.directory.url, input: nil)
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("\renqueue [########################################]  20/20 counts (100%)"), "\(result.stdout)")
    }

    @Test func reconcileReportsInJSONAndExitsTwoWhileFindingsRemain() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        let result = try cli.run(["reconcile", "--json"])
        #expect(result.status == 2, "\(result.stderr)")
        let json = try #require(try result.json() as? [String: Any])
        let findings = try #require(json["findings"] as? [[String: Any]])
        #expect(findings.count == 1)
        #expect(findings[0]["kind"] as? String == "missing")
        #expect(findings[0]["cid"] as? Int == 2)
        #expect(findings[0]["fixed"] is NSNull)
        #expect(json["need_attention"] as? Int == 1 && json["fixed"] as? Int == 0 && json["skipped_in_flight"] as? Int == 0)

        try Data(repeating: 1, count: 10).write(to: URL(fileURLWithPath: cli.levelPath("gold") + "/gone.mp4"))
        let fixed = try cli.run(["reconcile", "--fix", "--json"])
        #expect(fixed.status == 0, "\(fixed.stdout)\(fixed.stderr)")
        let after = try #require(try fixed.json() as? [String: Any])
        #expect((after["findings"] as? [[String: Any]])?.first?["fixed"] as? String == "database set to gold")
    }
}
