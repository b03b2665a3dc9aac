import Foundation
import Testing
import TestSupport

/// Numbers, required options and the shape of errors, through the built binary.
@Suite struct ArgumentTests {
    /// Bytes that are not UTF-8 (a Latin-1 filename from a shell): refused in one line, naming the
    /// argument, instead of decoded with a replacement character into a name no file has.
    @Test func anArgumentThatIsNotUTF8IsRefusedNotRepaired() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        // (Process takes Swift strings, which cannot hold such bytes: the shell makes them.)
        let script = #"exec "$0" contents add --cid 10 --filename "caf$(printf '\351').mp4" --level bronze"#
        let result = try ProcessRunner.run(URL(fileURLWithPath: "/bin/sh"), ["-c", script, try TestEnvironment.relocatorBinary().path],
                                           environment: cli.environment, currentDirectory: URL(fileURLWithPath: cli.path))
        #expect(result.status == 64)
        #expect(result.stderr == "Error: argument 6 is not UTF-8 ('caf\\xE9.mp4'): every name and value must be UTF-8\n", "\(result.stderr)")
    }

    @Test func aPortAboveTheRangeIsRefusedWithTheRangeInsteadOfWrapping() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let result = try cli.run(["serve", "--port", "99999"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("99999 is too large; expected a whole number from 0 to 65535"), "\(result.stderr)")
        #expect(!result.stdout.contains("listening"))
    }

    @Test(arguments: [
        (["relocations", "--limit", "-5"], "-5 is too small; expected a whole number from 0 to 10000"),
        (["relocations", "--limit=-5"], "-5 is too small; expected a whole number from 0 to 10000"),
        (["contents", "list", "--limit", "-5"], "-5 is too small; expected a whole number from 0 to 100000"),
        (["serve", "--port", "-1"], "-1 is too small; expected a whole number from 0 to 65535"),
        (["worker", "--concurrency", "-1"], "-1 is too small; expected a whole number from 1 to 256"),
        (["worker", "--grace-period", "-3"], "-3 is too small; expected a whole number from 0 to 86400"),
        (["worker", "--metrics-port", "70000"], "70000 is too large; expected a whole number from 0 to 65535"),
        (["committer", "--batch", "0"], "0 is too small; expected a whole number from 1 to 100000"),
        (["dlq", "replay", "--cid", "-2"], "-2 is too small"),
        (["enqueue", "--cid", "1", "--count", "-1"], "-1 is too small; expected a whole number from 0 to 9007199254740991"),
        (["enqueue", "--cid", "1", "--count", "9007199254740992"], "9007199254740992 is too large; expected a whole number from 0 to 9007199254740991"),
        (["enqueue", "--cid", "1", "--count", "9223372036854775807"], "9223372036854775807 is too large; expected a whole number from 0 to 9007199254740991"),
    ])
    func negativeAndOutOfRangeNumbersAreReadAndRefusedWithTheirRange(arguments: [String], message: String) throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let result = try cli.run(arguments)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!result.stderr.contains("Missing value"))
    }

    @Test func aCountBeyondSixtyFourBitsIsTooLargeWithTheRange() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let result = try cli.run(["enqueue", "--cid", "1", "--count", "99999999999999999999999"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("99999999999999999999999 is too large; expected a whole number from 0 to 9007199254740991"),
                "\(result.stderr)")
    }

    /// A file of counts with a line that is not UTF-8: refused in one line that names the line.
    @Test func aFileWithALineThatIsNotUTF8IsRefusedNamingTheLine() throws {
        let cli = try CLIWorkspace()
        defer { cli.stop() }
        #expect(try cli.run(["migrate"]).status == 0)
        let path = cli.path + "/counts.csv"
        try Data("cid,count\n1,5\n".utf8 + [0x32, 0x2C, 0x35, 0xE9, 0x0A] + "3,7\n".utf8).write(to: URL(fileURLWithPath: path))
        for flags in [[], ["--skip-bad"]] {
            let result = try cli.run(["enqueue", "--file", path] + flags)
            #expect(result.status == 1 && result.errorLines.count == 1, "\(result.stderr)")
            #expect(result.stderr == "Error: cannot read \(path): line 3 is not UTF-8 text\n", "\(result.stderr)")
        }
    }

    @Test(arguments: [
        (["dlq", "replay", "--cid", "99", "--dry-run"], "no dead job for cid 99; nothing replayed"),
        (["dlq", "purge", "--cid", "99"], "no dead job for cid 99; nothing purged"),
        (["contents", "add", "--cid", "1", "--filename", "../../etc/passwd", "--level", "bronze"], "filename '../../etc/passwd'"),
        (["enqueue", "--file", "/nonexistent.csv"], "cannot read /nonexistent.csv: No such file or directory"),
        (["worker", "--levels", "platinum"], "--levels: 'platinum' has no directory in RELOCATOR_LEVELS"),
    ])
    func failuresOfTheWorkAreOneLineWithoutTheUsage(arguments: [String], message: String) throws {
        let cli = try CLIWorkspace()
        defer { cli.stop() }
        cli.environment["RELOCATOR_LEVELS"] = try cli.makeLevels()
        #expect(try cli.run(["migrate"]).status == 0)
        #expect(try cli.run(["levels", "--seed-default"]).status == 0)
        let result = try cli.run(arguments)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("Error: "))
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!result.stderr.contains("Usage:"))
    }

    @Test func aCommandLineTheParserRefusesShowsTheUsageWithStatus64() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let result = try cli.run(["status", "--no-such-flag"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("Unknown option '--no-such-flag'"))
        #expect(result.stderr.contains("Usage: relocator status"))
    }

    @Test func theVersionIsPrinted() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let result = try cli.run(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3, "\(result.stdout)")
    }
}
