import Foundation
import Testing
import TestSupport

/// A move between levels of two hosts, run as two worker processes whose level directories are
/// disjoint (each names the other's level at a path it does not have, one level on the tmpfs of
/// /dev/shm and one on the disk): the worker holding the target pulls the file from the worker
/// holding the source, over HTTP, and the source goes only once the copy is proven.
@Suite struct CrossHostMoveTests {
    func redis(_ cli: CLIWorkspace, _ arguments: [String]) throws -> String {
        let url = try #require(cli.environment["REDIS_URL"])
        let port = try #require(url.firstMatch(of: /:(\d+)(\/\d+)?$/).flatMap { Int($0.1) }, "\(url)")
        return try RedisProcesses.cli(port: port, arguments).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The port the metrics server of a process started under `name` logged.
    func metricsPort(_ cli: CLIWorkspace, _ name: String) throws -> Int {
        var port: Int?
        try cli.waitUntil("the metrics server of \(name)") {
            if let match = cli.stderr(name).firstMatch(of: /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/) { port = Int(match.1) }
            return port != nil
        }
        return try #require(port, "\(cli.stderr(name))")
    }

    @Test func aMoveFromAnotherHostIsPulledVerifiedCommittedAndOnlyThenIsItsSourceRemoved() throws {
        let cli = try ContentsTests.workspace()
        let edge = try TemporaryDirectory("relocator-edge", under: "/dev/shm")
        defer { cli.stop(); edge.remove() }
        let gold = edge.path + "/gold", bronze = cli.path + "/archive/bronze", silver = cli.path + "/archive/silver"
        for path in [gold, bronze + "/movies", silver] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        // Three chunks and a bit: the last range is short.
        let size = 3 * (8 << 20) + 12345
        let data = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 13) })
        try data.write(to: URL(fileURLWithPath: bronze + "/movies/a.mp4"))
        try Data().write(to: URL(fileURLWithPath: bronze + "/empty.bin"))
        // A file of one range (fsynced and recorded as a whole with its publication).
        try Data(repeating: 7, count: 5000).write(to: URL(fileURLWithPath: bronze + "/small.bin"))
        let sum = try TestFiles.xxh128(bronze + "/movies/a.mp4")
        cli.environment["RELOCATOR_LEVELS"] = "bronze=\(bronze),silver=\(silver),gold=\(gold)"
        #expect(try cli.run(["contents", "import", "-"], input: "1,movies/a.mp4,bronze\n3,empty.bin,bronze\n4,small.bin,bronze\n").status == 0)

        // Each host names the other's levels at paths it does not have.
        let elsewhere = cli.path + "/another-host"
        let archiveLevels = "bronze=\(bronze),silver=\(silver),gold=\(elsewhere)/gold"
        let edgeLevels = "bronze=\(elsewhere)/bronze,silver=\(elsewhere)/silver,gold=\(gold)"
        try cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        for (id, levels) in [("archive", archiveLevels), ("edge", edgeLevels)] {
            // The edge serves its metrics (on the first free port from the default).
            try cli.start(id, ["worker", "--id", id, "--concurrency", "1", "--transfer-listen", "127.0.0.1:0"] + (id == "edge" ? [] : ["--metrics-port", "0"]),
                          environment: ["RELOCATOR_LEVELS": levels])
        }
        for id in ["archive", "edge"] {
            try cli.waitUntil("\(id)'s advertisement") { try !redis(cli, ["HGET", cli.prefix + "worker:\(id)", "transfer"]).isEmpty }
        }
        #expect(try redis(cli, ["HGET", cli.prefix + "worker:edge", "directories"]) == "gold=\(gold)")

        for cid in ["1", "3", "4"] { #expect(try cli.run(["enqueue", "--cid", cid, "--count", "20000"]).status == 0) }
        try cli.waitUntil("the commits", timeout: .seconds(60)) {
            let rows = try ContentsTests().listed(cli)
            return rows.filter { [1, 3, 4].contains($0["cid"] as? Int) }.allSatisfy { $0["level"] as? String == "gold" }
        }
        // An empty file, too (its one answer is the range past the end).
        #expect(try Data(contentsOf: URL(fileURLWithPath: gold + "/empty.bin")).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: bronze + "/empty.bin"))
        #expect(try TestFiles.xxh128(gold + "/movies/a.mp4") == sum)
        #expect(!FileManager.default.fileExists(atPath: bronze + "/movies/a.mp4"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: gold + "/.relocator/tmp").isEmpty)
        #expect(cli.stderr("edge").contains("moved from another host"), "\(cli.stderr("edge"))")
        // The source side removed its copy on the proof the edge sent, after it was published there.
        let archiveLog = cli.stderr("archive")
        #expect(archiveLog.contains("removed the source of a copy proven elsewhere") && archiveLog.contains("outcome=removed"), "\(archiveLog)")
        // The big file was served whole, in order, to one delivery: its removal took the hash made
        // as it was served, where the file system's times are this host's (else it read it again).
        let fileSystem = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/stat"), ["-f", "-c", "%T", bronze]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let localTimes = ["ext2/ext3", "tmpfs", "xfs", "btrfs"].contains(fileSystem)
        #expect(archiveLog.contains(localTimes ? "source.hash=served" : "source.hash=read"), "\(fileSystem): \(archiveLog)")
        #expect(try redis(cli, ["HGET", cli.prefix + "job:1", "checksum"]) == "xxh128:" + sum)
        // The pulling worker counts its pulls by outcome and the bytes it pulled.
        let metrics = try HTTP.get(try metricsPort(cli, "edge"), "/metrics")
        #expect(metrics.body.contains(#"relocator_pulls_total{from="bronze",to="gold",outcome="done"} 3"#), "\(metrics.body)")
        // The bytes of every pull, the file of one range's too.
        #expect(metrics.body.contains(#"relocator_pulled_bytes_total{from="bronze",to="gold"} \#(size + 5000)"#), "\(metrics.body)")
    }

    @Test func aPullKilledMidTransferResumesAfterItsLastVerifiedChunk() throws {
        let cli = try ContentsTests.workspace()
        let edge = try TemporaryDirectory("relocator-edge", under: "/dev/shm")
        defer { cli.stop(); edge.remove() }
        let gold = edge.path + "/gold", bronze = cli.path + "/archive/bronze", silver = cli.path + "/archive/silver"
        for path in [gold, bronze, silver] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        let chunk = 8 << 20
        let data = Data((0..<(4 * chunk + 777)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 17) })
        try data.write(to: URL(fileURLWithPath: bronze + "/b.mp4"))
        let sum = try TestFiles.xxh128(bronze + "/b.mp4")
        cli.environment["RELOCATOR_LEVELS"] = "bronze=\(bronze),silver=\(silver),gold=\(gold)"
        #expect(try cli.run(["contents", "import", "-"], input: "2,b.mp4,bronze\n").status == 0)
        let elsewhere = cli.path + "/another-host"
        let edgeLevels = ["RELOCATOR_LEVELS": "bronze=\(elsewhere)/bronze,silver=\(elsewhere)/silver,gold=\(gold)"]
        let worker = ["worker", "--concurrency", "1", "--metrics-port", "0", "--transfer-listen", "127.0.0.1:0", "--id"]
        try cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        try cli.start("archive", worker + ["archive"], environment: ["RELOCATOR_LEVELS": "bronze=\(bronze),silver=\(silver),gold=\(elsewhere)/gold"])
        // The edge is killed (SIGKILL) right after its second chunk was fsynced and recorded.
        let first = try cli.start("edge", worker + ["edge"], environment: edgeLevels.merging(["RELOCATOR_FAULTS": "crash-after-chunk=2"]) { $1 })
        for id in ["archive", "edge"] {
            try cli.waitUntil("\(id)'s advertisement") { try !redis(cli, ["HGET", cli.prefix + "worker:\(id)", "transfer"]).isEmpty }
        }
        #expect(try cli.run(["enqueue", "--cid", "2", "--count", "20000"]).status == 0)
        try cli.waitUntil("the kill", timeout: .seconds(60)) { !first.isRunning }
        #expect(try redis(cli, ["HGET", cli.prefix + "job:2", "verified"]) == "\(2 * chunk)")
        // The job names the pull's two hosts beside its bytes verified: in its hash, `why` and `status`.
        let archive = try redis(cli, ["HGET", cli.prefix + "worker:archive", "transfer"])
        let host = ProcessInfo.processInfo.hostName
        #expect(try redis(cli, ["HGET", cli.prefix + "job:2", "pulled_from"]) == "archive\n\(archive)\n\(host)")
        let why = try cli.run(["why", "2"])
        #expect(why.status == 0 && why.stdout.contains("It is pulled from another host: worker archive (\(archive)) → \(host) (16 MiB of "), "\(why.stdout)")
        #expect(why.stdout.contains("  pulled from another host: worker archive (\(archive)) → \(host), \(2 * chunk) of \(data.count) bytes verified"))
        let whyJSON = try #require(try cli.run(["why", "2", "--json"]).json() as? [String: Any])
        let route = (whyJSON["job"] as? [String: Any])?["pulled_from"] as? [String: Any]
        #expect(route?["from_worker"] as? String == "archive" && route?["from_address"] as? String == archive && route?["to_host"] as? String == host)
        let status = try cli.run(["status"])
        let row = status.lines.first { $0.contains("worker archive (\(archive)) → \(host)") }
        #expect(row?.contains("bronze → gold") == true && row?.hasPrefix("edge") == true && row?.contains("16MiB of ") == true, "\(status.stdout)")
        let statusJSON = try #require(try cli.run(["status", "--json"]).json() as? [String: Any])
        let moves = try #require(statusJSON["moves"] as? [[String: Any]])
        #expect(moves.count == 1 && moves.first?["worker"] as? String == "edge" && moves.first?["cid"] as? Int == 2, "\(moves)")
        #expect(moves.first?["bytes_done"] as? Int == 2 * chunk && moves.first?["bytes_total"] as? Int == data.count)
        #expect((moves.first?["pulled_from"] as? [String: Any])?["to_host"] as? String == host)
        // The verified chunks stay in the job's temporary file.
        let parts = try FileManager.default.contentsOfDirectory(atPath: gold + "/.relocator/tmp")
        #expect(parts.count == 1 && parts.first?.hasPrefix("2-") == true, "\(parts)")
        #expect(FileManager.default.fileExists(atPath: bronze + "/b.mp4"))

        // Restarted under its id: the job comes back at once and the pull goes on after the 16 MiB
        // verified, re-hashing them here rather than receiving them again.
        try cli.start("edge-again", ["worker", "--concurrency", "1", "--transfer-listen", "127.0.0.1:0", "--id", "edge"], environment: edgeLevels)
        try cli.waitUntil("the commit", timeout: .seconds(60)) {
            try ContentsTests().listed(cli).first { $0["cid"] as? Int == 2 }?["level"] as? String == "gold"
        }
        #expect(cli.stderr("edge-again").contains("resuming a transfer after the \(2 * chunk) bytes verified before"), "\(cli.stderr("edge-again"))")
        #expect(try TestFiles.xxh128(gold + "/b.mp4") == sum)
        #expect(!FileManager.default.fileExists(atPath: bronze + "/b.mp4"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: gold + "/.relocator/tmp").isEmpty)
        // Only the bytes after the verified prefix were pulled again.
        let metrics = try HTTP.get(try metricsPort(cli, "edge-again"), "/metrics")
        #expect(metrics.body.contains(#"relocator_pulled_bytes_total{from="bronze",to="gold"} \#(data.count - 2 * chunk)"#), "\(metrics.body)")
        #expect(metrics.body.contains(#"relocator_pulls_total{from="bronze",to="gold",outcome="done"} 1"#))
    }

    /// Killed between the link of its copy and the record of its publication: the job says
    /// `publishing` (the source's side refuses to remove on that), the copy is at the target and the
    /// source in place. The next delivery checks the copy against the recorded checksum, records it
    /// published, and only then has the source removed.
    @Test func aPullKilledBetweenTheLinkAndItsRecordIsRecordedPublishedThenProven() throws {
        let cli = try ContentsTests.workspace()
        let edge = try TemporaryDirectory("relocator-edge", under: "/dev/shm")
        defer { cli.stop(); edge.remove() }
        let gold = edge.path + "/gold", bronze = cli.path + "/archive/bronze", silver = cli.path + "/archive/silver"
        for path in [gold, bronze, silver] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        let data = Data((0..<((8 << 20) + 4321)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 9) })
        try data.write(to: URL(fileURLWithPath: bronze + "/c.mp4"))
        let sum = try TestFiles.xxh128(bronze + "/c.mp4")
        cli.environment["RELOCATOR_LEVELS"] = "bronze=\(bronze),silver=\(silver),gold=\(gold)"
        #expect(try cli.run(["contents", "import", "-"], input: "4,c.mp4,bronze\n").status == 0)
        let elsewhere = cli.path + "/another-host"
        let edgeLevels = ["RELOCATOR_LEVELS": "bronze=\(elsewhere)/bronze,silver=\(elsewhere)/silver,gold=\(gold)"]
        let worker = ["worker", "--concurrency", "1", "--metrics-port", "0", "--transfer-listen", "127.0.0.1:0", "--id"]
        try cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        try cli.start("archive", worker + ["archive"], environment: ["RELOCATOR_LEVELS": "bronze=\(bronze),silver=\(silver),gold=\(elsewhere)/gold"])
        let first = try cli.start("edge", worker + ["edge"], environment: edgeLevels.merging(["RELOCATOR_FAULTS": "crash-before-published"]) { $1 })
        for id in ["archive", "edge"] {
            try cli.waitUntil("\(id)'s advertisement") { try !redis(cli, ["HGET", cli.prefix + "worker:\(id)", "transfer"]).isEmpty }
        }
        #expect(try cli.run(["enqueue", "--cid", "4", "--count", "20000"]).status == 0)
        try cli.waitUntil("the kill", timeout: .seconds(60)) { !first.isRunning }
        #expect(try redis(cli, ["HGET", cli.prefix + "job:4", "stage"]) == "publishing")
        #expect(try TestFiles.xxh128(gold + "/c.mp4") == sum)
        #expect(FileManager.default.fileExists(atPath: bronze + "/c.mp4"), "not removed on publishing alone")

        try cli.start("edge-again", worker + ["edge"], environment: edgeLevels)
        try cli.waitUntil("the commit", timeout: .seconds(60)) {
            try ContentsTests().listed(cli).first { $0["cid"] as? Int == 4 }?["level"] as? String == "gold"
        }
        #expect(cli.stderr("edge-again").contains("the copy an earlier delivery published is in place"), "\(cli.stderr("edge-again"))")
        #expect(try TestFiles.xxh128(gold + "/c.mp4") == sum)
        #expect(!FileManager.default.fileExists(atPath: bronze + "/c.mp4"))
    }
}
