import Foundation
import Testing
import TestSupport

/// `reconcile` on one host of several: it checks its own levels and asks the workers of the other
/// hosts (their transfer endpoints) before it calls a content missing or misplaced.
@Suite struct CrossHostReconcileTests {
    /// The findings of a run, by cid (level-wide ones under -1), and the run's JSON.
    func reconcile(_ cli: CLIWorkspace, _ levels: String, _ extra: [String] = []) throws -> (status: Int32, byCID: [Int: [[String: Any]]], all: [String: Any]) {
        let result = try cli.run(["reconcile", "--json"] + extra, environment: ["RELOCATOR_LEVELS": levels])
        let all = try #require(try result.json() as? [String: Any], "\(result.stdout)\(result.stderr)")
        var byCID: [Int: [[String: Any]]] = [:]
        for finding in all["findings"] as? [[String: Any]] ?? [] { byCID[finding["cid"] as? Int ?? -1, default: []].append(finding) }
        return (result.status, byCID, all)
    }

    func kinds(_ findings: [[String: Any]]?) -> [String] { (findings ?? []).compactMap { $0["kind"] as? String } }

    @Test func reconcileAsksTheOtherHostsWorkersBeforeCallingAContentMissingOrMisplaced() throws {
        let cli = try ContentsTests.workspace()
        let edge = try TemporaryDirectory("relocator-edge", under: "/dev/shm")
        defer { cli.stop(); edge.remove() }
        let gold = edge.path + "/gold", bronze = cli.path + "/archive/bronze", silver = cli.path + "/archive/silver"
        for path in [gold, bronze, silver] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        func write(_ path: String, _ text: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) }
        // 1: on gold, as the database says (the edge's own); 2: the database says bronze, it is on
        // gold; 3: on no host; 4: the database says gold, it is on bronze; 5: on both hosts.
        try write(gold + "/a.bin", "a")
        try write(gold + "/b.bin", "bb")
        try write(bronze + "/d.bin", "dddd")
        try write(gold + "/e.bin", "eeeee")
        try write(bronze + "/e.bin", "eeeee")
        cli.environment["RELOCATOR_LEVELS"] = "bronze=\(bronze),silver=\(silver),gold=\(gold)"
        let imported = try cli.run(["contents", "import", "-"], input: "1,a.bin,gold\n2,b.bin,bronze\n3,c.bin,silver\n4,d.bin,gold\n5,e.bin,gold\n")
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try ContentsTests().listed(cli).count == 5)

        // Each host names the other's levels at paths it does not have; the workers share a key.
        let elsewhere = cli.path + "/another-host"
        let archiveLevels = "bronze=\(bronze),silver=\(silver),gold=\(elsewhere)/gold"
        let edgeLevels = "bronze=\(elsewhere)/bronze,silver=\(elsewhere)/silver,gold=\(gold)"
        let keyFile = cli.path + "/transfer.key"
        try write(keyFile, "a secret every host's workers share\n")
        let worker = try cli.start("edge", ["worker", "--id", "edge", "--concurrency", "1", "--transfer-listen", "127.0.0.1:0", "--transfer-secret-file", keyFile],
                                   environment: ["RELOCATOR_LEVELS": edgeLevels])
        try cli.waitUntil("the edge's advertisement") { cli.stderr("edge").contains("transfers served on") }
        let heartbeat = ["HGET", cli.prefix + "worker:edge", "transfer"]
        try cli.waitUntil("the edge's heartbeat") { try !CrossHostMoveTests().redis(cli, heartbeat).isEmpty }

        // Without the workers' key the edge refuses the questions: nothing is decided that needed them.
        let unsigned = try reconcile(cli, archiveLevels)
        #expect(unsigned.status == 2)
        for cid in [2, 3, 5] { #expect(kinds(unsigned.byCID[cid]) == ["unverified"], "\(cid): \(unsigned.all)") }
        #expect((unsigned.byCID[3]?.first?["detail"] as? String)?.contains("missing_credential") == true, "\(unsigned.all)")

        let run = try reconcile(cli, archiveLevels, ["--transfer-secret-file", keyFile])
        #expect(run.status == 2)
        #expect(run.byCID[1] == nil, "\(run.all)")
        #expect(run.all["skipped_elsewhere"] as? Int == 1)
        #expect(kinds(run.byCID[2]) == ["wrong_level"] && (run.byCID[2]?.first?["detail"] as? String)?.contains("is on gold (worker edge at 127.0.0.1:") == true,
                "\(run.all)")
        #expect(kinds(run.byCID[3]) == ["missing"] && (run.byCID[3]?.first?["detail"] as? String)?.contains("nor on the other hosts' levels gold") == true,
                "\(run.all)")
        #expect(kinds(run.byCID[4]) == ["wrong_level"] && (run.byCID[4]?.first?["detail"] as? String)?.contains("d.bin is on bronze") == true, "\(run.all)")
        #expect(kinds(run.byCID[5]) == ["copies_on_hosts"], "\(run.all)")

        let fixed = try reconcile(cli, archiveLevels, ["--transfer-secret-file", keyFile, "--fix"])
        #expect(fixed.byCID[2]?.first?["fixed"] as? String == "database set to gold", "\(fixed.all)")
        #expect(fixed.byCID[4]?.first?["fixed"] as? String == "database set to bronze", "\(fixed.all)")
        #expect(fixed.byCID[5]?.first?["fixed"] is NSNull, "\(fixed.all)")
        let levels = Dictionary(uniqueKeysWithValues: try ContentsTests().listed(cli).map { ($0["cid"] as? Int ?? 0, $0["level"] as? String ?? "") })
        #expect(levels == [1: "gold", 2: "gold", 3: "silver", 4: "bronze", 5: "gold"])
        // Nothing was removed or created on either host.
        for path in [gold + "/a.bin", gold + "/b.bin", gold + "/e.bin", bronze + "/d.bin", bronze + "/e.bin"] {
            #expect(FileManager.default.fileExists(atPath: path), "\(path)")
        }

        // The edge gone, gold is looked at by nobody: what the database places there is left
        // alone, and what may be there is not called missing.
        worker.signal(SIGTERM)
        _ = worker.stop(timeout: .seconds(20))
        try cli.waitUntil("the edge's heartbeat to go") { try CrossHostMoveTests().redis(cli, heartbeat).isEmpty }
        let alone = try reconcile(cli, archiveLevels, ["--transfer-secret-file", keyFile])
        #expect(kinds(alone.byCID[-1]) == ["level_unavailable"], "\(alone.all)")
        #expect((alone.byCID[-1]?.first?["detail"] as? String)?.contains("no live worker serves it") == true)
        #expect(kinds(alone.byCID[3]) == ["unverified"], "\(alone.all)")
        #expect(alone.byCID[2] == nil && alone.byCID[5] == nil, "\(alone.all)")
        #expect(alone.all["skipped_unavailable"] as? Int == 3)
    }
}
