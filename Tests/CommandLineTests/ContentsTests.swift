import Foundation
import Testing
import TestSupport

/// `contents add/import/list` and `enqueue --file`: CSV read as CSV, unknown levels refused where
/// they enter, bad lines reported by number, nothing changed unless `--skip-bad`.
@Suite struct ContentsTests {
    /// A migrated workspace with the default levels (on `redis`, default the test Redis).
    static func workspace(redis: String? = nil) throws -> CLIWorkspace {
        let cli = try CLIWorkspace(redis: redis)
        #expect(try cli.run(["migrate"]).status == 0)
        #expect(try cli.run(["levels", "--seed-default"]).status == 0)
        return cli
    }

    func listed(_ cli: CLIWorkspace) throws -> [[String: Any]] {
        let result = try cli.run(["contents", "list", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try result.json() as? [[String: Any]])
    }

    /// A changed level is a commit, as reconcile's: a relocation row names the command, and while
    /// the content has a job in flight its move decides and nothing changes.
    @Test func contentsAddSaysWhatItDidAndAChangedLevelIsACommit() throws {
        let cli = try Self.workspace()
        defer { cli.stop() }
        #expect(try cli.run(["contents", "add", "--cid", "7", "--filename", "g.mp4", "--level", "bronze"]).stdout == "added cid 7: g.mp4 on bronze\n")
        #expect(try cli.run(["contents", "add", "--cid", "7", "--filename", "g.mp4", "--level", "bronze"]).stdout == "cid 7 unchanged: g.mp4 on bronze\n")
        #expect(try cli.run(["contents", "add", "--cid", "7", "--filename", "h.mp4", "--level", "gold"]).stdout
            == "changed cid 7: filename g.mp4 → h.mp4, level bronze → gold\n")
        let moves = try #require(try cli.run(["relocations", "--cid", "7", "--json"]).json() as? [[String: Any]])
        #expect(moves.count == 1 && moves[0]["from"] as? String == "bronze" && moves[0]["to"] as? String == "gold"
                && moves[0]["worker"] as? String == "relocator contents add", "\(moves)")
        #expect(try cli.run(["enqueue", "--cid", "7", "--count", "5"]).status == 0)
        let refused = try cli.run(["contents", "add", "--cid", "7", "--filename", "h.mp4", "--level", "silver"])
        #expect(refused.status == 1 && refused.stderr.contains("cid 7 has a job in flight"), "\(refused.stderr)")
        let imported = try cli.run(["contents", "import"], input: "7,h.mp4,silver\n8,i.mp4,gold\n")
        #expect(imported.status == 1 && imported.stderr.contains("nothing changed"), "\(imported.stderr)")
        #expect(try listed(cli).map { "\($0["cid"] ?? "")=\($0["level"] ?? "")" } == ["7=gold"])
    }

    /// `contents remove`: the row only, never while a job or a level of this machine holds the content.
    @Test func contentsRemoveRemovesTheRowOnlyOnceNoJobAndNoLevelHoldsTheContent() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        func remove(_ cid: Int) throws -> ProcessResult { try cli.run(["contents", "remove", "--cid", String(cid)]) }
        func cids() throws -> [Int] { try listed(cli).compactMap { $0["cid"] as? Int } }

        #expect(try remove(99).stderr == "Error: no content with cid 99\n")
        // cid 1's file is on bronze.
        let kept = try remove(1)
        #expect(kept.status == 1)
        #expect(kept.stderr == "Error: cid 1's file is still on bronze (\(cli.levelPath("bronze"))/present.mp4); nothing removed (remove the file first, or keep the content)\n")
        // A level of the table this machine does not see could hold it.
        let blind = try cli.run(["contents", "remove", "--cid", "2"],
                                environment: ["RELOCATOR_LEVELS": "bronze=\(cli.levelPath("bronze")),silver=\(cli.levelPath("silver"))"])
        #expect(blind.stderr == "Error: cannot check every level for cid 2's file: gold has no directory in RELOCATOR_LEVELS; nothing removed\n")
        // cid 2 (no file anywhere) with a job queued, then dead.
        #expect(try cli.run(["enqueue", "--cid", "2", "--count", "20000"]).status == 0)
        #expect(try remove(2).stderr == "Error: cid 2 has a job in flight; nothing removed (relocator why 2 shows it)\n")
        try cli.start("w1", ["worker", "--id", "w1", "--concurrency", "1", "--metrics-port", "0"])
        try cli.waitUntil("the dead job") { (try cli.run(["status", "--json"]).json() as? [String: Any])?["dead"] as? Int == 1 }
        #expect(try remove(2).stderr == "Error: cid 2 has a dead job; nothing removed: `relocator dlq purge --cid 2` forgets it (and removes a copy it may have left)\n")
        #expect(try cids() == [1, 2])
        #expect(try cli.run(["dlq", "purge", "--cid", "2"]).status == 0)
        let removed = try remove(2)
        #expect(removed.status == 0 && removed.stdout == "removed cid 2 (gone.mp4, on bronze in the database)\n", "\(removed.stderr)")
        #expect(try cids() == [1])

        // cid 1 moves to gold and is committed; its file then goes away: the row goes, its move stays.
        try cli.start("c1", ["committer", "--id", "c1", "--metrics-port", "0"])
        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "20000"]).status == 0)
        try cli.waitUntil("the commit") { try cli.run(["relocations", "--cid", "1"]).lines.count == 2 }
        #expect(try remove(1).stderr.contains("cid 1's file is still on gold"))
        try FileManager.default.removeItem(atPath: cli.levelPath("gold") + "/present.mp4")
        // silver's disk not mounted (its directory without `.relocator/`): it cannot vouch that the file is gone.
        let reserved = cli.levelPath("silver") + "/.relocator"
        try FileManager.default.moveItem(atPath: reserved, toPath: reserved + "-away")
        let unmounted = try remove(1)
        try FileManager.default.moveItem(atPath: reserved + "-away", toPath: reserved)
        #expect(unmounted.status == 1 && unmounted.stderr.hasPrefix("Error: cannot tell whether silver holds present.mp4: ")
                && unmounted.stderr.contains("its disk is not mounted") && unmounted.stderr.hasSuffix("; nothing removed\n"), "\(unmounted.stderr)")
        #expect(try cids() == [1])
        #expect(try remove(1).stdout == "removed cid 1 (present.mp4, on gold in the database); its relocation stays as history\n")
        #expect(try cids().isEmpty)
        #expect(try cli.run(["relocations", "--cid", "1"]).lines.count == 2)
    }

    @Test func aFilenameInsideTheReservedDirectoryIsRefusedWhereItEnters() throws {
        let cli = try Self.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let add = try cli.run(["contents", "add", "--cid", "1", "--filename", ".relocator/tmp/1-1.part", "--level", "gold"])
        #expect(add.status == 1)
        #expect(add.stderr.contains("the filename is inside .relocator/, the directory Relocator reserves in each level"), "\(add.stderr)")
        let imported = try cli.run(["contents", "import", "-"], input: "1,a.mp4,bronze\n2,.relocator/lock,bronze\n")
        #expect(imported.status == 1)
        #expect(imported.stderr.contains("line 2: filename '.relocator/lock'"), "\(imported.stderr)")
        #expect(try listed(cli).isEmpty)
    }

    @Test func aLevelNotInTheLevelTableIsRefusedWhereItEnters() throws {
        let cli = try Self.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let add = try cli.run(["contents", "add", "--cid", "1", "--filename", "a.mp4", "--level", "platinum"])
        #expect(add.status == 1)
        #expect(add.stderr == "Error: level 'platinum' is not in the level table (bronze, silver, gold)\n")
        let imported = try cli.run(["contents", "import", "-"], input: "1,a.mp4,bronze\n2,b.mp4,platinum\n")
        #expect(imported.status == 1)
        #expect(imported.stderr.contains("line 2: level 'platinum' is not in the level table"), "\(imported.stderr)")
        #expect(try listed(cli).isEmpty)
    }

    /// One cid on two lines that disagree is a mistake whichever line would win: refused, naming
    /// both lines. The same line twice is one content.
    @Test func aCidGivenTwiceDifferentlyIsRefusedInAnImport() throws {
        let cli = try Self.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let twice = try cli.run(["contents", "import", "-"], input: "1,a.mp4,bronze\n2,b.mp4,bronze\n1,c.mp4,bronze\n")
        #expect(twice.status == 1)
        #expect(twice.stderr.contains("line 3: cid 1 is also on line 1, as a.mp4 on bronze"), "\(twice.stderr)")
        #expect(try listed(cli).isEmpty)
        let repeated = try cli.run(["contents", "import", "-"], input: "1,a.mp4,bronze\n1,a.mp4,bronze\n")
        #expect(repeated.status == 0 && repeated.stdout == "imported 1 content\n", "\(repeated.stderr)")
    }

    @Test func quotedFieldsAndAHeaderLineAreReadAsCSV() throws {
        let cli = try Self.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let csv = """
            level,cid,filename
            bronze,22,"q,uoted.mp4"
            silver, 23 ,"say ""hi"".mp4"

            # a comment
            gold,24,plain.mp4
            """
        try csv.write(toFile: cli.path + "/contents.csv", atomically: true, encoding: .utf8)
        let result = try cli.run(["contents", "import", "contents.csv"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "imported 3 contents\n")
        let rows = try listed(cli)
        #expect(rows.map { $0["filename"] as? String } == ["q,uoted.mp4", "say \"hi\".mp4", "plain.mp4"])
        #expect(rows.map { $0["level"] as? String } == ["bronze", "silver", "gold"])
        #expect(rows.allSatisfy { $0["update_time"] is NSNull })
    }

    @Test func aQuotedFilenameKeepsItsSpacesTabsQuotesAndBackslashes() throws {
        let cli = try Self.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let names = [" padded.mp4 ", "tab\tand \"quotes\" and back\\slash é.mp4", "'; DROP TABLE contents; --.mp4"]
        let csv = names.enumerated().map { "\($0.offset + 1),\"\($0.element.replacingOccurrences(of: "\"", with: "\"\""))\",bronze" }
        let result = try cli.run(["contents", "import"], input: csv.joined(separator: "\r\n"))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try listed(cli).map { $0["filename"] as? String } == names)
    }

    /// An unquoted field loses its spaces and tabs on both sides, a filename's too; only a quoted
    /// filename keeps them.
    @Test func anUnquotedFilenameLosesItsSpacesOnBothSides() throws {
        let cli = try Self.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let result = try cli.run(["contents", "import"], input: "1, a.bin ,bronze\n2,b.bin\t,bronze\n3, \" c.bin \" ,bronze\n4,d e.bin  ,bronze")
        #expect(result.status == 0 && result.stdout == "imported 4 contents\n", "\(result.stderr)")
        #expect(try listed(cli).map { $0["filename"] as? String } == ["a.bin", "b.bin", " c.bin ", "d e.bin"])
    }

    /// `café` with `é` (C3 A9) and with `e` and a combining accent (65 CC 81) are one string to
    /// Swift but two names on disk and in SQL: `contents add` changes one into the other, and an
    /// import may give them to two contents.
    @Test func twoSpellingsOfOneCharacterAreTwoFilenames() throws {
        // (A change of filename checks the queue for a job of the content: Redis is needed.)
        let cli = try Self.workspace()
        defer { cli.stop() }
        let composed = "caf\u{E9}.bin", decomposed = "cafe\u{301}.bin"
        func bytes(_ text: String?) -> [UInt8] { Array((text ?? "").utf8) }
        #expect(bytes(try cli.run(["contents", "add", "--cid", "50", "--filename", composed, "--level", "bronze"]).stdout)
            == bytes("added cid 50: \(composed) on bronze\n"))
        let changed = try cli.run(["contents", "add", "--cid", "50", "--filename", decomposed, "--level", "bronze"])
        #expect(bytes(changed.stdout) == bytes("changed cid 50: filename \(composed) → \(decomposed)\n"), "\(changed.stdout)\(changed.stderr)")
        #expect(bytes(try cli.run(["contents", "add", "--cid", "50", "--filename", decomposed, "--level", "bronze"]).stdout)
            == bytes("cid 50 unchanged: \(decomposed) on bronze\n"))
        let imported = try cli.run(["contents", "import"], input: "51,x-\(composed),bronze\n52,x-\(decomposed),bronze\n")
        #expect(imported.status == 0 && imported.stdout == "imported 2 contents\n", "\(imported.stderr)")
        #expect(try listed(cli).map { bytes($0["filename"] as? String) } == [bytes(decomposed), bytes("x-" + composed), bytes("x-" + decomposed)])
    }

    /// A filename holding a newline, a terminal's escape sequence or a mark that reverses what
    /// follows is printed on one line with those escaped, in what a command says it did and in
    /// its errors alike: never as two lines, a colour, or another name.
    @Test func aFilenameWithControlCharactersIsPrintedAsItIsOnOneLine() throws {
        let cli = try Self.workspace()
        defer { cli.stop() }
        let name = "nl\nname-\u{1B}[31mred-\u{202E}gpj.exe"
        let shown = #"nl\nname-\u{1B}[31mred-\u{202E}gpj.exe"#
        let added = try cli.run(["contents", "add", "--cid", "60", "--filename", name, "--level", "bronze"])
        #expect(added.status == 0 && added.stdout == "added cid 60: \(shown) on bronze\n", "\(added.stdout)\(added.stderr)")
        let taken = try cli.run(["contents", "add", "--cid", "61", "--filename", name, "--level", "bronze"])
        #expect(taken.status == 1 && taken.stderr.contains(shown) && taken.stderr.split(separator: "\n").count == 1, "\(taken.stderr)")
        let listed = try cli.run(["contents", "list"])
        #expect(listed.stdout.contains(shown) && listed.stdout.split(separator: "\n").count == 2, "\(listed.stdout)\(listed.stderr)")
    }

    @Test func badLinesAreReportedByNumberAndNothingIsImportedWithoutSkipBad() throws {
        let cli = try Self.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let csv = """
            cid,filename,level
            1,good.mp4,bronze
            x,c.mp4,gold
            2,"bad"x,gold
            3,"multi
            line.mp4",silver
            4,../escape.mp4,gold
            5,two,fields,too,many
            6,good2.mp4,gold
            7,good.mp4,silver
            ,
            ,,
            8,good3.mp4,gold
            """
        let refused = try cli.run(["contents", "import"], input: csv)
        #expect(refused.status == 1)
        #expect(refused.errorLines.count == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("standard input: 7 bad lines, nothing imported (--skip-bad imports the good ones)"), "\(refused.stderr)")
        // Lines 5 and 6 are one record (a quoted line break): the lines after it keep their numbers.
        for line in ["line 3: cid 'x'", "line 4: malformed quoting", "line 7: filename '../escape.mp4'",
                     "line 8: 5 fields, expected 3", "line 10: filename 'good.mp4' is also given to cid 1 on line 2",
                     // A line of empty fields is not a blank line.
                     "line 11: 2 empty fields, expected 3 values", "line 12: 3 empty fields, expected 3 values"] {
            #expect(refused.stderr.contains(line), "\(line) in \(refused.stderr)")
        }
        #expect(try listed(cli).isEmpty)

        let skipped = try cli.run(["contents", "import", "--skip-bad"], input: csv)
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.stdout == "imported 4 contents; skipped 7 bad lines\n")
        #expect(skipped.errorLines.count == 7)
        #expect(skipped.errorLines.allSatisfy { $0.hasPrefix("warning: skipped line ") })
        let rows = try listed(cli)
        #expect(rows.map { $0["cid"] as? Int } == [1, 3, 6, 8])
        #expect(rows[1]["filename"] as? String == "multi\nline.mp4")

        // A line of empty fields ends the input without its line break, or comes before the header:
        // reported either way, and the header is still one.
        let last = try cli.run(["contents", "import"], input: "9,x.mp4,gold\n,")
        #expect(last.status == 1 && last.stderr.contains("line 2: 2 empty fields"), "\(last.stderr)")
        let first = try cli.run(["contents", "import", "--skip-bad"], input: ",\nlevel,filename,cid\ngold,y.mp4,10\n")
        #expect(first.status == 0 && first.stderr.contains("line 1: 2 empty fields"), "\(first.stderr)")
        #expect(try listed(cli).first { $0["cid"] as? Int == 10 }?["filename"] as? String == "y.mp4")
    }

    @Test func contentsListFiltersByLevelWithAHeaderRowAndRefusesAnUnknownLevel() throws {
        let cli = try Self.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        #expect(try cli.run(["contents", "import"], input: "1,a.mp4,bronze\n2,b.mp4,gold\n3,c.mp4,gold\n").status == 0)
        let gold = try cli.run(["contents", "list", "--level", "gold", "--limit", "1"])
        #expect(gold.lines.count == 2, "\(gold.stdout)")
        #expect(gold.lines.first?.split(separator: " ", omittingEmptySubsequences: true) == ["cid", "filename", "level", "update_time"])
        #expect(gold.lines.last?.hasPrefix("2 ") == true)
        let none = try cli.run(["contents", "list", "--limit", "0"])
        #expect(none.lines.count == 1)
        let unknown = try cli.run(["contents", "list", "--level", "platinum"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("level 'platinum' is not in the level table"))
    }

    // MARK: - enqueue --file

    @Test func enqueueFileChecksEveryLineFirstAndSubmitsNothingWhenOneIsBad() throws {
        let cli = try Self.workspace()
        defer { cli.stop() }
        #expect(try cli.run(["contents", "import"], input: "1,a.mp4,bronze\n2,b.mp4,bronze\n").status == 0)
        let csv = "cid,count\n1,5000\n\"2\",\"20000\"\n99,10\n2,-4\n1,99999999999999999999999\n"
        let refused = try cli.run(["enqueue", "--file", "-"], input: csv)
        #expect(refused.status == 1)
        #expect(refused.errorLines.count == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("standard input: 3 bad lines, nothing submitted"), "\(refused.stderr)")
        #expect(refused.stderr.contains("line 4: no content has cid 99"))
        #expect(refused.stderr.contains("line 5: count: -4 is too small"))
        #expect(refused.stderr.contains("line 6: count: 99999999999999999999999 is too large"))
        let status = try cli.run(["status", "--json"])
        let levels = try #require((try status.json() as? [String: Any])?["levels"] as? [[String: Any]])
        #expect(levels.allSatisfy { $0["queued"] as? Int == 0 }, "\(levels)")

        let skipped = try cli.run(["enqueue", "--file", "-", "--skip-bad"], input: csv)
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.stdout.contains("submitted 2 counts: created 2; skipped 3 bad lines"), "\(skipped.stdout)")
        let after = try #require((try cli.run(["status", "--json"]).json() as? [String: Any])?["levels"] as? [[String: Any]])
        #expect(after.first { $0["name"] as? String == "silver" }?["queued"] as? Int == 1)
        #expect(after.first { $0["name"] as? String == "gold" }?["queued"] as? Int == 1)
    }
}
