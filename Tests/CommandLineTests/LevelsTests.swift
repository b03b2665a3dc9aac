import Foundation
import Testing
import TestSupport

/// The level table from the command line: ranges and policy in one table, `levels set` with its
/// validation, the original rule of a huge count reported, pause and resume.
@Suite struct LevelsTests {
    func levels(_ cli: CLIWorkspace) throws -> [[String: Any]] {
        let result = try cli.run(["levels", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try result.json() as? [[String: Any]])
    }

    @Test func aCountAboveTheTopLevelRaisesItsMaxCountsAndSaysSo() throws {
        let cli = try ContentsTests.workspace()
        defer { cli.stop() }
        #expect(try cli.run(["contents", "add", "--cid", "1", "--filename", "a.mp4", "--level", "bronze"]).status == 0)
        let result = try cli.run(["enqueue", "--cid", "1", "--count", "250000"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines.first == "raised gold's max_counts from 99999 to 250000", "\(result.stdout)")
        #expect(try levels(cli).last?["max_counts"] as? Int == 250_000)
        let again = try cli.run(["enqueue", "--cid", "1", "--count", "200000"])
        #expect(!again.stdout.contains("raised"), "\(again.stdout)")

        #expect(try cli.run(["contents", "add", "--cid", "2", "--filename", "b.mp4", "--level", "bronze"]).status == 0)
        let bulk = try cli.run(["enqueue", "--file", "-"], input: "1,300000\n2,400000\n")
        #expect(bulk.status == 0, "\(bulk.stderr)")
        #expect(bulk.stdout.contains("raised gold's max_counts from 250000 to 400000"), "\(bulk.stdout)")
    }

    @Test func levelsSetRefusesAGapOrAnOverlapUnlessForced() throws {
        let cli = try ContentsTests.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let gap = try cli.run(["levels", "set", "silver", "--min", "2000", "--max", "9999"])
        #expect(gap.status == 1)
        #expect(gap.errorLines.count == 1, "\(gap.stderr)")
        #expect(gap.stderr.contains("counts 1000–1999 belong to no level"), "\(gap.stderr)")
        #expect(gap.stderr.hasSuffix("; nothing changed (--force applies it anyway)\n"), "\(gap.stderr)")
        #expect(try levels(cli)[1]["min_counts"] as? Int == 1000)

        let overlap = try cli.run(["levels", "set", "platinum", "--min", "50000", "--max", "200000"])
        #expect(overlap.status == 1)
        #expect(overlap.stderr.contains("overlap"), "\(overlap.stderr)")
        #expect(try levels(cli).count == 3)

        let forced = try cli.run(["levels", "set", "silver", "--min", "2000", "--max", "9999", "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stdout.contains("silver: counts 2000–9999 (were 1000–9999)"), "\(forced.stdout)")
        #expect(forced.stdout.contains("warning (applied with --force): counts 1000–1999 belong to no level"), "\(forced.stdout)")
        // Every edit checks the whole table: with the gap, another edit is refused until it is closed.
        #expect(try cli.run(["levels", "set", "gold", "--max", "100000"]).stderr.contains("counts 1000–1999 belong to no level"))
        #expect(try cli.run(["levels", "set", "silver", "--min", "1000"]).stdout == "silver: counts 1000–9999 (were 2000–9999)\n")

        let added = try cli.run(["levels", "set", "platinum", "--min", "100000", "--max", "999999"])
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout == "platinum: added with counts 100000–999999\n")
        let onlyMax = try cli.run(["levels", "set", "gold", "--max", "100000"])
        #expect(onlyMax.stdout == "gold: counts 10000–100000 (were 10000–99999)\n", "\(onlyMax.stderr)")
        #expect(try cli.run(["levels", "set", "iron", "--min", "5"]).stderr.contains("level 'iron' is new: give both --min and --max"))
        #expect(try cli.run(["levels", "set", "gold"]).status == 64)
    }

    @Test func levelsSetStoresThePolicyWithDurationsAndSizesAndLevelsShowsItBesideTheRanges() throws {
        let cli = try ContentsTests.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let set = try cli.run(["levels", "set", "gold", "--high-water", "90", "--low-water", "75", "--min-residency", "7d",
                               "--hysteresis", "10", "--max-moves", "4", "--bandwidth", "200MiB", "--priority", "-1"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout == "gold: policy high_water 90%, low_water 75%, min_residency 1w, hysteresis 10%, max_moves 4, bandwidth 200MiB/s, priority -1\n",
                "\(set.stdout)")
        let gold = try #require(try levels(cli).first { $0["name"] as? String == "gold" })
        #expect(gold["high_water"] as? Int == 90)
        #expect(gold["min_residency"] as? Int == 604_800)
        #expect(gold["bandwidth"] as? Int == 200 * 1_048_576)
        #expect(gold["priority"] as? Int == -1)
        #expect(gold["max_counts"] as? Int == 99999)
        let bronze = try #require(try levels(cli).first)
        #expect(bronze["high_water"] is NSNull)

        let table = try cli.run(["levels"])
        #expect(table.lines.first?.split(separator: " ", omittingEmptySubsequences: true)
            == ["level", "min_counts", "max_counts", "high_water", "low_water", "min_residency", "hysteresis", "max_moves", "bandwidth", "priority"])
        #expect(table.lines.last?.split(separator: " ", omittingEmptySubsequences: true)
            == ["gold", "10000", "99999", "90%", "75%", "1w", "10%", "4", "200MiB/s", "-1"], "\(table.stdout)")

        let cleared = try cli.run(["levels", "set", "gold", "--bandwidth", "none", "--min-residency", "90s"])
        #expect(cleared.status == 0, "\(cleared.stderr)")
        let after = try #require(try levels(cli).first { $0["name"] as? String == "gold" })
        #expect(after["bandwidth"] is NSNull)
        #expect(after["min_residency"] as? Int == 90)
        #expect(after["high_water"] as? Int == 90)
    }

    @Test(arguments: [
        (["--high-water", "101"], "101 is too large; expected a whole number from 0 to 100"),
        (["--min-residency", "1x"], "'1x' is not a duration such as 90s"),
        (["--bandwidth", "12XB"], "unknown unit 'xb'"),
        (["--max-moves", "-1"], "-1 is too small"),
    ])
    func malformedPolicyValuesAreRefusedByTheParser(arguments: [String], message: String) throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let result = try cli.run(["levels", "set", "gold"] + arguments)
        #expect(result.status == 64)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test func aPolicyOutsideItsLimitsChangesNothingAndALevelOutsideTheTableIsRefused() throws {
        let cli = try ContentsTests.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        #expect(try cli.run(["levels", "set", "gold", "--high-water", "60"]).status == 0)
        let refused = try cli.run(["levels", "set", "gold", "--low-water", "80", "--min", "10000", "--max", "200000"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("low_water 80 is above high_water 60; nothing changed"), "\(refused.stderr)")
        let gold = try #require(try levels(cli).first { $0["name"] as? String == "gold" })
        #expect(gold["max_counts"] as? Int == 99999)
        #expect(gold["low_water"] is NSNull)
        let unknown = try cli.run(["levels", "set", "platinum", "--high-water", "90"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("level 'platinum' is not in the level table"), "\(unknown.stderr)")
    }

    @Test func pauseAndResumeActOnLevelsOfTheTableOnly() throws {
        let cli = try ContentsTests.workspace()
        defer { cli.stop() }
        let unknown = try cli.run(["pause", "platinum"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr == "Error: level 'platinum' is not in the level table (bronze, silver, gold)\n")
        #expect(try cli.run(["pause", "gold"]).status == 0)
        let paused = try #require(try cli.run(["status", "--json"]).json() as? [String: Any])
        #expect(paused["paused"] as? [String] == ["gold"])
        #expect(try cli.run(["status"]).stdout.contains("paused: gold (relocator resume LEVEL)"))
        #expect(try cli.run(["resume", "gold"]).stdout == "resumed gold\n")
        let resumed = try #require(try cli.run(["status", "--json"]).json() as? [String: Any])
        #expect(resumed["paused"] as? [String] == [])
    }
}
