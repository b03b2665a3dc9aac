import Foundation
import Testing
import TestSupport

/// A worker with `--transfer-listen`: it keeps the levels whose directory its host has, serves
/// them on the address it advertises in its heartbeat, and refuses what is not a credentialed
/// request of a job's delivery. Without it, a worker starts as before.
@Suite struct TransferStartTests {
    func redis(_ cli: CLIWorkspace, _ arguments: [String]) throws -> String {
        let url = try #require(cli.environment["REDIS_URL"])
        let port = try #require(url.firstMatch(of: /:(\d+)(\/\d+)?$/).flatMap { Int($0.1) }, "\(url)")
        return try RedisProcesses.cli(port: port, arguments).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func aWorkerServesTheLevelsOfItsHostWhereItAdvertisesThem() throws {
        let cli = try ContentsTests.workspace()
        defer { cli.stop() }
        let gold = cli.levelPath("gold")
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        // silver is another host's: its directory is not on this one.
        let silver = cli.path + "/another-host/silver"
        cli.environment["RELOCATOR_LEVELS"] = "gold=\(gold),silver=\(silver)"
        let worker = try cli.start("edge", ["worker", "--id", "edge", "--concurrency", "1", "--metrics-port", "0", "--transfer-listen", "127.0.0.1:0"])
        let beat = cli.prefix + "worker:edge"
        try cli.waitUntil("the advertisement") { try !redis(cli, ["HGET", beat, "transfer"]).isEmpty }
        let address = try redis(cli, ["HGET", beat, "transfer"])
        let port = try #require(address.firstMatch(of: /^127\.0\.0\.1:(\d+)$/).flatMap { Int($0.1) }, "\(address)")
        #expect(try redis(cli, ["HGET", beat, "directories"]) == "gold=\(gold)")
        #expect(try redis(cli, ["HGET", beat, "levels"]) == "gold")
        #expect(cli.stderr("edge").contains("level 'silver' (\(silver)) is not on this host"), "\(cli.stderr("edge"))")
        // Over a real socket: no credential, no file; a credential for a content without a job, none.
        let bare = try HTTP.get(port, "/transfer/v1/contents/1")
        #expect(bare.status == 401 && bare.json?["error"] as? String == "missing_credential", "\(bare.body)")
        let noSecret = try HTTP.get(port, "/transfer/v1/contents/1", headers: ["Relocator-Delivery": "1", "Relocator-Gen": "1"])
        #expect(noSecret.status == 401 && noSecret.json?["error"] as? String == "missing_credential", "\(noSecret.body)")
        let credentials = ["Relocator-Delivery": "1", "Relocator-Gen": "1", "Relocator-Secret": "guessed"]
        let unknown = try HTTP.get(port, "/transfer/v1/contents/1", headers: credentials)
        #expect(unknown.status == 404 && unknown.json?["error"] as? String == "unknown_cid", "\(unknown.body)")
        let trick = try HTTP.get(port, "/transfer/v1/contents/..%2F..%2Fetc%2Fpasswd", headers: credentials)
        #expect(trick.status == 400 && trick.json?["error"] as? String == "invalid_cid", "\(trick.body)")
        #expect(worker.isRunning)
    }

    @Test func theTransferOptionsAreCheckedBeforeAnythingStarts() throws {
        let cli = try ContentsTests.workspace()
        defer { cli.stop() }
        cli.environment["RELOCATOR_LEVELS"] = try cli.makeLevels()
        try Data("short\n".utf8).write(to: URL(fileURLWithPath: cli.path + "/short-key"))
        let (busy, port) = try loopbackSocket(backlog: 1)
        defer { close(busy) }
        let cases: [([String], String)] = [
            // An address this host cannot listen on is refused at start (the server would fail later, inside the worker).
            (["--transfer-listen", "192.0.2.1:7400"], "--transfer-listen 192.0.2.1:7400: cannot listen on 192.0.2.1:7400: cannot assign requested address"),
            (["--transfer-listen", "127.0.0.1:\(port)"], "--transfer-listen 127.0.0.1:\(port): cannot listen on 127.0.0.1:\(port): address already in use"),
            (["--transfer-listen", "127.0.0.1:0", "--transfer-advertise", "10.0.0.1:0"], "--transfer-advertise: "),
            // Metrics on such an address: refused at once, not a hundred ports tried in vain.
            (["--metrics-host", "192.0.2.1"], "--metrics-host 192.0.2.1: cannot listen on 192.0.2.1:0: cannot assign requested address"),
            (["--transfer-advertise", "10.0.0.1:7400"], "--transfer-advertise needs --transfer-listen"),
            (["--transfer-listen", "0.0.0.0:7400"], "--transfer-listen 0.0.0.0:7400 is no address other hosts can reach: give --transfer-advertise"),
            (["--transfer-listen", "7400"], "--transfer-listen: expected host:port"),
            (["--transfer-listen", "127.0.0.1:70000"], "the port must be 0 to 65535 (got '70000')"),
            (["--transfer-listen", "0.0.0.0:7400", "--transfer-advertise", "edge 1:7400"], "--transfer-advertise: expected host:port"),
            (["--transfer-secret-file", cli.path + "/key"], "--transfer-secret-file needs --transfer-listen"),
            (["--transfer-listen", "127.0.0.1:0", "--transfer-secret-file", cli.path + "/no-such-key"], "--transfer-secret-file \(cli.path)/no-such-key: cannot be read"),
            (["--transfer-listen", "127.0.0.1:0", "--transfer-secret-file", cli.path + "/short-key"], "--transfer-secret-file \(cli.path)/short-key holds 5 bytes: a shared secret has at least 16"),
        ]
        for (options, message) in cases {
            let result = try cli.run(["worker", "--id", "w1"] + (options.contains("--metrics-host") ? [] : ["--metrics-port", "0"]) + options)
            #expect(result.status != 0 && result.errorLines.count == 1, "\(options): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(options): \(result.stderr)")
        }
    }

    /// The transfer port taken between the worker's probe and its server's bind (Scripts/port-taken.c
    /// fails that second bind, as another process binding the port in between would): the worker
    /// stops — its slots end, what it holds goes back — and exits non-zero with the error. It ran
    /// on without its endpoint before, its group's signal handling gone: SIGTERM did nothing.
    @Test func aWorkerWhoseTransferServerCannotBindStopsWithTheError() throws {
        let cli = try ContentsTests.workspace()
        defer { cli.stop() }
        cli.environment["RELOCATOR_LEVELS"] = try cli.makeLevels()
        let port = try freeLoopbackPort()
        let shim = try buildShim("port-taken", in: cli.path)
        let worker = try cli.start("w1", ["worker", "--id", "w1", "--concurrency", "1", "--metrics-port", "0", "--transfer-listen", "127.0.0.1:\(port)"],
                                   environment: ["LD_PRELOAD": shim, "PORT_TAKEN": String(port)])
        try cli.waitUntil("the worker stops", timeout: .seconds(60)) { !worker.isRunning }
        let stderr = cli.stderr("w1")
        #expect(worker.status != 0, "\(stderr)")
        #expect(stderr.lowercased().contains("address already in use"), "\(stderr)")
        #expect(stderr.contains("stopped worker=w1"), "\(stderr)")
    }

    @Test func withoutATransferAddressEveryLevelsDirectoryMustBeOnThisHostAsBefore() throws {
        let cli = try ContentsTests.workspace()
        defer { cli.stop() }
        let gold = cli.levelPath("gold")
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        cli.environment["RELOCATOR_LEVELS"] = "gold=\(gold),silver=\(cli.path)/another-host/silver"
        let result = try cli.run(["worker", "--id", "w1", "--metrics-port", "0"])
        #expect(result.status != 0 && result.stderr.contains("level 'silver' (\(cli.path)/another-host/silver): no such directory"), "\(result.stderr)")
        // With it, but no level here at all: refused, naming them.
        cli.environment["RELOCATOR_LEVELS"] = "silver=\(cli.path)/another-host/silver"
        let none = try cli.run(["worker", "--id", "w1", "--metrics-port", "0", "--transfer-listen", "127.0.0.1:0"])
        #expect(none.status != 0 && none.errorLines.count == 1 && none.stderr.contains("no level directory is on this host"), "\(none.stderr)")
    }
}
