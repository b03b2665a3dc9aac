import Foundation
import Testing
import TestSupport

/// `status`, `dlq` and `relocations` against real workers and a committer moving real files.
@Suite struct LiveCommandTests {
    /// A migrated, seeded workspace with level directories and contents on bronze: `present.mp4`
    /// (cid 1, a file) and `gone.mp4` (cid 2, no file anywhere).
    static func workspace() throws -> CLIWorkspace {
        let cli = try ContentsTests.workspace()
        cli.environment["RELOCATOR_LEVELS"] = try cli.makeLevels()
        try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: cli.levelPath("bronze") + "/present.mp4"))
        #expect(try cli.run(["contents", "import"], input: "1,present.mp4,bronze\n2,gone.mp4,bronze\n").status == 0)
        return cli
    }

    func status(_ cli: CLIWorkspace) throws -> [String: Any] {
        let result = try cli.run(["status", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try result.json() as? [String: Any])
    }

    func queued(_ status: [String: Any], _ level: String) -> Int? {
        (status["levels"] as? [[String: Any]])?.first { $0["name"] as? String == level }?["queued"] as? Int
    }

    func startWorker(_ cli: CLIWorkspace, _ id: String = "w1") throws {
        try cli.start(id, ["worker", "--id", id, "--levels", "gold,silver", "--concurrency", "1", "--grace-period", "5"])
    }

    @Test func statusSaysPlainlyWhenNoWorkerIsRunningAndShowsEachProcess() throws {
        let cli = try Self.workspace()
        defer { cli.stop() }
        try cli.start("committer", ["committer", "--id", "c1"])
        try cli.waitUntil("the committer's heartbeat") { (try status(cli)["committers_running"] as? Int) == 1 }
        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "20000"]).status == 0)

        let idle = try cli.run(["status"])
        #expect(idle.stdout.contains("no worker is running: nothing moves files"), "\(idle.stdout)")
        #expect(!idle.stdout.contains("no committer is running"))
        // Which queue waits, and what to do.
        #expect(idle.stdout.contains("1 job queued for gold and no live worker takes them: start one with relocator worker --levels gold."), "\(idle.stdout)")
        let header = try #require(idle.lines.first { $0.hasPrefix("id ") })
        #expect(header.split(separator: " ", omittingEmptySubsequences: true) == ["id", "kind", "host", "levels", "heartbeat", "jobs_in_hand", "metrics"])
        let committerRow = try #require(idle.lines.first { $0.hasPrefix("c1 ") })
        #expect(committerRow.contains("committer") && committerRow.contains(" ago"), "\(committerRow)")
        let goldRow = try #require(idle.lines.first { $0.hasPrefix("gold ") })
        #expect(goldRow.split(separator: " ", omittingEmptySubsequences: true).prefix(2) == ["gold", "1"], "\(goldRow)")
        var json = try status(cli)
        #expect(json["workers_running"] as? Int == 0)
        #expect(queued(json, "gold") == 1)
        #expect((json["queues"] as? [String: Int])?["gold"] == 1)
        let gold = try #require((json["levels"] as? [[String: Any]])?.first { $0["name"] as? String == "gold" })
        #expect(gold["oldest_age_seconds"] is Double || gold["oldest_age_seconds"] is Int)

        try startWorker(cli)
        try cli.waitUntil("the move's commit") {
            let now = try status(cli)
            return (now["totals"] as? [String: Any])?["committed"] as? Int == 1
        }
        json = try status(cli)
        #expect(json["workers_running"] as? Int == 1)
        // Each level's fill as df shows it for the level's directory (the worker's heartbeat reports it).
        let fill = try #require((json["levels"] as? [[String: Any]])?.first { $0["name"] as? String == "gold" }?["fill_percent"] as? Double)
        let df = try ProcessRunner.run(URL(fileURLWithPath: "/bin/df"), ["-B1", "--output=used,avail", cli.levelPath("gold")])
        let numbers = df.stdout.split(separator: "\n").last?.split(separator: " ").compactMap { Double($0) } ?? []
        #expect(numbers.count == 2 && abs(fill - numbers[0] * 100 / (numbers[0] + numbers[1])) < 0.5, "status \(fill) %, df \(df.stdout)")
        let worker = try #require((json["workers"] as? [[String: Any]])?.first { $0["id"] as? String == "w1" })
        #expect(worker["kind"] as? String == "worker")
        #expect(worker["levels"] as? [String] == ["gold", "silver"])
        #expect(worker["held"] as? Int == 0)
        #expect((worker["heartbeat_at"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil)
        #expect(worker["heartbeat_age_seconds"] != nil)
        let totals = try #require(json["totals"] as? [String: Any])
        #expect(totals["moved"] as? Int == 1 && totals["moved_bytes"] as? Int == 4096)
        for key in ["processing", "retry", "deferred", "dead", "done", "committing"] { #expect(json[key] as? Int == 0, "\(key)") }
        let text = try cli.run(["status"]).stdout
        #expect(!text.contains("no worker is running") && !text.contains("no live worker takes them"), "\(text)")
        #expect(text.contains("totals: moved 1 (4KiB), retried 0, dead 0, committed 1"), "\(text)")
    }

    /// `dlq list` a page at a time: `--limit` rows, then the total and the command for the next
    /// page, whose `--cursor` goes on where the page stopped; a limit out of range is refused.
    @Test func deadJobsAreListedAPageAtATimeWithTheTotal() throws {
        let cli = try Self.workspace()
        defer { cli.stop() }
        #expect(try cli.run(["contents", "import"], input: "3,gone-3.mp4,bronze\n4,gone-4.mp4,bronze\n").status == 0)
        try startWorker(cli)
        for cid in [2, 3, 4] { #expect(try cli.run(["enqueue", "--cid", String(cid), "--count", "20000"]).status == 0) }
        try cli.waitUntil("three dead jobs") { (try status(cli)["dead"] as? Int) == 3 }

        let first = try cli.run(["dlq", "list", "--limit", "2"])
        #expect(first.status == 0 && first.lines.count == 4, "\(first.stdout)")
        let footer = String(try #require(first.lines.last))
        let command = try #require(footer.firstMatch(of: /^2 of 3 dead jobs shown; next page: relocator dlq list --limit 2 --cursor (\S+)$/), "\(footer)")
        let second = try cli.run(["dlq", "list", "--limit", "2", "--cursor", String(command.output.1)])
        #expect(second.status == 0 && second.lines.count == 3 && second.lines.last.map(String.init) == "1 of 3 dead jobs shown", "\(second.stdout)")
        let cids = (first.lines.dropFirst().dropLast() + second.lines.dropFirst().dropLast()).map { $0.split(separator: " ").first.map(String.init) }
        #expect(Set(cids.compactMap { $0 }) == ["2", "3", "4"], "\(cids)")
        let json = try #require(try cli.run(["dlq", "list", "--json", "--limit", "1"]).json() as? [String: Any])
        #expect(json["total"] as? Int == 3 && (json["dead"] as? [Any])?.count == 1 && json["next_cursor"] is String)
        let refused = try cli.run(["dlq", "list", "--limit", "1001"])
        #expect(refused.status != 0 && refused.stderr.contains("1001 is too large"), "\(refused.stderr)")
        let junk = try cli.run(["dlq", "list", "--cursor", "junk"])
        #expect(junk.status == 1 && junk.stderr == "Error: cursor is not one this API gave out (use next_cursor of the page before)\n", "\(junk.stderr)")
    }

    @Test func deadJobsAreListedReplayedAndPurgedByOneNotFoundRule() throws {
        let cli = try Self.workspace()
        defer { cli.stop() }
        try cli.start("committer", ["committer", "--id", "c1"])
        try startWorker(cli)
        #expect(try cli.run(["enqueue", "--cid", "2", "--count", "20000"]).status == 0)
        try cli.waitUntil("the dead job") { (try status(cli)["dead"] as? Int) == 1 }

        let list = try cli.run(["dlq", "list"])
        #expect(list.lines.first?.split(separator: " ", omittingEmptySubsequences: true)
            == ["cid", "filename", "move", "attempts", "updated_at", "reason", "last_error"], "\(list.stdout)")
        #expect(list.lines.count == 3)
        #expect(list.lines[1].contains("gone.mp4  bronze → gold  1"), "\(list.stdout)")
        #expect(list.lines[2] == "1 of 1 dead job shown", "\(list.stdout)")
        let page = try #require(try cli.run(["dlq", "list", "--json"]).json() as? [String: Any])
        #expect(page["total"] as? Int == 1 && page["limit"] as? Int == 50 && page["next_cursor"] is NSNull)
        let listed = try #require(page["dead"] as? [[String: Any]])
        #expect(listed.count == 1)
        #expect(listed[0]["cid"] as? Int == 2 && listed[0]["filename"] as? String == "gone.mp4")
        #expect(listed[0]["from"] as? String == "bronze" && listed[0]["to"] as? String == "gold")
        #expect((listed[0]["updated_at"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil)
        let id = try #require(listed[0]["id"] as? String)

        let dry = try cli.run(["dlq", "replay", "--cid", "2", "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout == "would replay \(id) (cid 2): gone.mp4, bronze → gold\n1 job would be replayed\n")
        for arguments in [["dlq", "replay", "--cid", "2", "--cid", "99", "--cid", "98"], ["dlq", "replay", "--cid", "99", "--dry-run"]] {
            let missing = try cli.run(arguments)
            #expect(missing.status == 1)
            #expect(missing.stderr.hasPrefix("Error: no dead job for cid 99"), "\(missing.stderr)")
        }
        #expect(try cli.run(["dlq", "replay", "--cid", "2", "--cid", "99"]).stderr == "Error: no dead job for cid 99; nothing replayed\n")
        for arguments in [["dlq", "purge", "--cid", "99"], ["dlq", "purge", "--cid", "99", "--dry-run"]] {
            #expect(try cli.run(arguments).stderr == "Error: no dead job for cid 99; nothing purged\n")
        }
        #expect(try cli.run(["dlq", "purge", "--cid", "2", "--dry-run"]).stdout == "would purge \(id) (cid 2): gone.mp4, bronze → gold\n1 job would be purged\n")
        #expect(try status(cli)["dead"] as? Int == 1)

        // The file turns up: the replayed job moves it.
        try Data(repeating: 1, count: 100).write(to: URL(fileURLWithPath: cli.levelPath("bronze") + "/gone.mp4"))
        let replayed = try cli.run(["dlq", "replay", "--cid", "2"])
        #expect(replayed.stdout == "replayed \(id) (cid 2): gone.mp4, bronze → gold\n1 job replayed\n", "\(replayed.stderr)")
        try cli.waitUntil("the replayed move's commit") { (try status(cli)["totals"] as? [String: Any])?["committed"] as? Int == 1 }
        #expect(FileManager.default.fileExists(atPath: cli.levelPath("gold") + "/gone.mp4"))

        #expect(try cli.run(["contents", "add", "--cid", "3", "--filename", "never.mp4", "--level", "bronze"]).status == 0)
        #expect(try cli.run(["enqueue", "--cid", "3", "--count", "20000"]).status == 0)
        try cli.waitUntil("the second dead job") { (try status(cli)["dead"] as? Int) == 1 }
        let purged = try cli.run(["dlq", "purge", "--all"])
        #expect(purged.stdout.hasSuffix("1 job purged\n"), "\(purged.stdout)")
        #expect(try cli.run(["dlq", "list"]).stdout.contains("the dead-letter list is empty"))
    }

    @Test func countsPrintAsWholeNumbers() throws {
        let cli = try Self.workspace()
        defer { cli.stop() }
        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "25000"]).status == 0)
        // No worker runs: the job waits, and plan --details shows it with its count.
        let plan = try cli.run(["plan", "--details"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let row = try #require(plan.lines.first { $0.hasPrefix("1 ") }, "\(plan.stdout)")
        #expect(row.split(separator: " ", omittingEmptySubsequences: true).contains("25000"), "\(row)")
        #expect(!plan.stdout.contains("25000.0"), "\(plan.stdout)")
        let json = try cli.run(["plan", "--json", "--details"]).stdout
        #expect(json.contains(#""count" : 25000"#) || json.contains(#""count":25000"#), "\(json)")
        #expect(!json.contains("25000.0"), "\(json)")
        for command in [["status"], ["why", "1"], ["status", "--json"], ["why", "1", "--json"]] {
            let output = try cli.run(command).stdout
            #expect(!output.contains("25000.0"), "\(command): \(output)")
        }
        #expect(try cli.run(["why", "1"]).stdout.contains("The last count, 25000, falls in gold"))
    }

    /// `plan` prints a summary — moves by kind, each level's contents and moves in and out — and
    /// lists each move only with --details, in text and in JSON.
    @Test func planPrintsASummaryAndListsEachMoveOnlyWithDetails() throws {
        let cli = try Self.workspace()
        defer { cli.stop() }
        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "25000"]).status == 0)

        let summary = try cli.run(["plan"])
        #expect(summary.status == 0, "\(summary.stderr)")
        #expect(summary.lines.contains("1 move planned (--details lists each)"), "\(summary.stdout)")
        #expect(!summary.lines.contains { $0.hasPrefix("1 ") && $0.contains("present.mp4") }, "\(summary.stdout)")
        let pending = try #require(summary.lines.first { $0.hasPrefix("pending ") }, "\(summary.stdout)")
        #expect(pending.split(separator: " ", omittingEmptySubsequences: true).prefix(2) == ["pending", "1"], "\(pending)")
        let bronze = try #require(summary.lines.first { $0.hasPrefix("bronze ") }, "\(summary.stdout)")
        #expect(bronze.split(separator: " ", omittingEmptySubsequences: true)[1] == "2", "two contents on bronze: \(bronze)")
        #expect(bronze.hasSuffix("1 pending"), "one move out of bronze: \(bronze)")
        let gold = try #require(summary.lines.first { $0.hasPrefix("gold ") }, "\(summary.stdout)")
        #expect(gold.contains("1 pending") && gold.hasSuffix("-"), "one move into gold: \(gold)")

        let detailed = try cli.run(["plan", "--details"])
        #expect(detailed.lines.contains { $0.hasPrefix("1 ") && $0.contains("present.mp4") && $0.contains("bronze → gold") }, "\(detailed.stdout)")
        #expect(detailed.lines.contains("1 move planned"), "\(detailed.stdout)")

        let json = try #require(try cli.run(["plan", "--json"]).json() as? [String: Any])
        #expect(json["moves"] == nil, "\(json)")
        #expect(json["total"] as? Int == 1)
        #expect((json["kinds"] as? [[String: Any]])?.first?["kind"] as? String == "pending")
        let levels = try #require(json["levels"] as? [[String: Any]])
        let bronzeJSON = try #require(levels.first { $0["level"] as? String == "bronze" })
        #expect(bronzeJSON["contents"] as? Int == 2 && (bronzeJSON["moves_out"] as? [String: Int]) == ["pending": 1], "\(bronzeJSON)")
        let withMoves = try #require(try cli.run(["plan", "--json", "--details"]).json() as? [String: Any])
        #expect((withMoves["moves"] as? [[String: Any]])?.map { $0["cid"] as? Int } == [1], "\(withMoves)")
        #expect(withMoves["total"] as? Int == 1)
    }

    @Test func relocationsShowEachMoveWithItsFilenameInTextAndSnakeCaseJSON() throws {
        let cli = try Self.workspace()
        defer { cli.stop() }
        try cli.start("committer", ["committer", "--id", "c1"])
        try startWorker(cli)
        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "20000"]).status == 0)
        try cli.waitUntil("the commit") { try cli.run(["relocations", "--json"]).stdout.contains("present.mp4") }

        let table = try cli.run(["relocations"])
        #expect(table.lines.count == 2, "\(table.stdout)")
        #expect(table.lines[0].split(separator: " ", omittingEmptySubsequences: true)
            == ["moved_at", "job_id", "cid", "filename", "from", "to", "bytes", "checksum", "worker", "attempts"])
        let row = table.lines[1].split(separator: " ", omittingEmptySubsequences: true)
        // A time read from the database keeps the database's precision (trailing zeros dropped).
        #expect(row[0].wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z/) != nil, "\(row)")
        #expect(Array(row[2...6]) == ["1", "present.mp4", "bronze", "gold", "4096"], "\(row)")
        #expect(row[7].hasPrefix("xxh128:"))
        #expect(row[8] == "w1")

        let json = try #require(try cli.run(["relocations", "--json"]).json() as? [[String: Any]])
        #expect(Set(json[0].keys) == ["job_id", "cid", "filename", "from", "to", "bytes", "checksum", "worker", "attempts", "moved_at", "gen"])
        #expect(json[0]["filename"] as? String == "present.mp4")
        #expect(try cli.run(["relocations", "--cid", "2"]).lines.count == 1)
        #expect(try cli.run(["relocations", "--cid", "1"]).lines.count == 2)
        let none = try cli.run(["relocations", "--limit", "0"])
        #expect(none.status == 0)
        #expect(none.lines.count == 1, "\(none.stdout)")
        #expect(try cli.run(["relocations", "--limit", "0", "--json"]).stdout == "[]\n")
    }
}
