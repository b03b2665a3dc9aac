import Foundation
@testable import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// What the scripts promise beyond their results: every key a script touches arrives in its KEYS
/// (so a cluster-aware client can route it), all of one slot; the Lua spells the same field and
/// status names as Swift; an error names the script's file and line.
@Suite struct ScriptContractTests {
    static let luaDirectory = TestEnvironment.packageRoot.appendingPathComponent("Sources/JobQueue/Lua")

    static func luaFiles() throws -> [(name: String, text: String)] {
        try FileManager.default.contentsOfDirectory(atPath: luaDirectory.path).filter { $0.hasSuffix(".lua") }.sorted().map {
            ($0, try String(contentsOf: luaDirectory.appendingPathComponent($0), encoding: .utf8))
        }
    }

    @Test func everyLuaFileIsAScriptOfTheQueue() throws {
        let files = Set(try Self.luaFiles().map(\.name)).subtracting(["helpers.lua"])
        #expect(files == Set(QueueScripts.all.map(\.name)))
    }

    /// Runs every script against a private Redis while `redis-cli monitor` records what each one
    /// did, then asks Redis (`COMMAND GETKEYS`) which keys each command a script ran touched.
    @Test func everyScriptTouchesOnlyTheKeysItIsGivenAllInOneSlot() throws {
        let server = try RedisServer()
        let logDirectory = try TemporaryDirectory("relocator-monitor")
        defer { logDirectory.remove() }
        let log = logDirectory.path + "/monitor.log"
        let cli = try #require(ProcessRunner.which("redis-cli"))
        let monitor = try ChildProcess(cli.path, ["-h", "127.0.0.1", "-p", String(server.port), "monitor"],
                                       environment: ProcessInfo.processInfo.environment, stdoutPath: log)
        defer { monitor.stop(timeout: .seconds(2)) }
        let q = try QueueFixture(shards: 2, url: server.url)
        let deadline = ContinuousClock.now + .seconds(5)
        while ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").isEmpty, ContinuousClock.now < deadline {
            _ = try q.redis.send("PING")
            usleep(20_000)
        }
        try Self.exerciseEveryScript(q)
        _ = try q.redis.send("PING")
        usleep(200_000)
        monitor.stop(timeout: .seconds(2))

        var shaNames: [String: String] = [:]
        for script in QueueScripts.all {
            if let sha = try q.redis.send("SCRIPT", "LOAD", script.source).string { shaNames[sha] = script.name }
        }
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        var current: (script: String, keys: Set<String>)?
        var ran: Set<String> = []
        var checked = 0
        for line in lines {
            guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]") else { continue }
            let arguments = Self.monitorArguments(line[line.index(after: close)...])
            if line[open...close].hasSuffix(" lua]") {
                guard let current, !arguments.isEmpty else { continue }
                let reply = try q.redis.pipeline([RedisCommand(["COMMAND", "GETKEYS"] + arguments)])[0]
                let touched = reply.array?.compactMap(\.string) ?? []
                for key in touched {
                    #expect(current.keys.contains(key), "\(current.script) ran \(arguments[0]) on \(key), which is not in its KEYS")
                }
                checked += 1
                continue
            }
            guard arguments.first?.uppercased() == "EVALSHA", arguments.count >= 3, let count = Int(arguments[2]),
                  let name = shaNames[arguments[1]] else {
                current = nil
                continue
            }
            let keys = Array(arguments[3..<(3 + count)])
            let tags = Set(keys.map(Self.hashTag))
            #expect(tags.count <= 1, "\(name) was given keys of several slots: \(keys)")
            current = (name, Set(keys))
            ran.insert(name)
        }
        #expect(checked > 50)
        #expect(ran == Set(QueueScripts.all.map(\.name)), "scripts never run: \(Set(QueueScripts.all.map(\.name)).subtracting(ran))")
        q.cleanUp()
    }

    /// A scenario that runs each script at least once.
    static func exerciseEveryScript(_ q: QueueFixture) throws {
        let levels = ["gold", "silver", "bronze"]
        let redis = q.redis
        try q.queue.heartbeat(worker: "w1", info: [.kind: "worker"], ttl: .seconds(60), on: redis)
        #expect(try q.queue.holdRebalancer("r1", ttl: .seconds(5), on: redis))
        #expect(try !q.queue.holdRebalancer("r2", ttl: .seconds(5), on: redis))
        for cid in Int64(1)...6 { try q.submit(cid) }
        // take, claim, progress, ack, take-done, committed
        let first = try #require(try q.fetch())
        #expect(try q.record(first, [(.stage, MoveStage.copying.rawValue), (.part, "/g/.x.relocator-1-1.part")]))
        try q.moveAndCommit(first)
        // fail → retry, due, promote
        let second = try #require(try q.fetch())
        _ = try q.fail(second, delay: .zero)
        #expect(try q.queue.promoteDue(on: redis) == 1)
        // defer
        let third = try #require(try q.fetch())
        try q.queue.deferJob(JobID(cid: third.cid, gen: third.gen), worker: "w1", token: third.deliveryToken, reason: "full", for: .zero, locked: true,
                                 on: redis)
        // dead-action (replay, purge)
        let fourth = try #require(try q.fetch())
        _ = try q.fail(fourth, permanent: true)
        _ = try q.queue.dead(.replay, cids: nil, on: redis)
        let fifth = try #require(try q.fetch())
        _ = try q.fail(fifth, permanent: true)
        _ = try q.queue.dead(.purge, cids: nil, on: redis)
        // giveback, handback (release), reap-check, forget-worker
        _ = try q.fetch()
        try q.queue.release(worker: "w1", on: redis)
        try q.queue.heartbeat(worker: "gone", info: [:], ttl: .milliseconds(50), on: redis)
        usleep(100_000)
        _ = try q.queue.reap(grace: .milliseconds(50), on: redis)
        usleep(70_000)
        _ = try q.queue.reap(grace: .milliseconds(50), on: redis)
        // restore, lease, unlease
        try q.submit(7)
        try redis.send("DEL", q.queue.keys.shard(of: 7).queue("gold"))
        _ = try q.queue.orphans(cids: [7], fix: true, on: redis)
        #expect(try q.queue.lease(cid: 100, token: "t", ttl: .seconds(5), on: redis))
        try q.queue.unlease(cid: 100, token: "t", on: redis)
        // hit, permit, room, bandwidth
        _ = try q.queue.hit(cid: 8, hits: 3, halfLife: .seconds(60), on: redis)
        #expect(try q.queue.permit(level: "gold", holder: "w1/0", most: 1, ttl: .seconds(5), on: redis))
        #expect(try q.queue.reserveRoom(level: "gold", holder: "w1/0", bytes: 10, room: 100, ttl: .seconds(5), on: redis).granted)
        _ = try q.queue.takeBandwidth(level: "gold", rate: 1000, bytes: 100, on: redis)
        try q.queue.levelChanged(cid: 8, on: redis)
        // does-not-fit (the third job is still deferred), writable
        #expect(try q.queue.giveUpDoesNotFit(JobID(cid: third.cid, gen: third.gen), message: "does not fit", on: redis))
        try q.queue.checkWritable(on: redis)
        _ = try q.queue.stats(levels: levels, on: redis)
    }

    /// The arguments of one MONITOR line: `"CMD" "arg" …` with Redis' escapes.
    static func monitorArguments(_ text: Substring) -> [String] {
        var arguments: [String] = []
        var bytes: [UInt8] = []
        var inside = false
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if !inside {
                if byte == UInt8(ascii: "\"") { inside = true; bytes = [] }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                arguments.append(String(decoding: bytes, as: UTF8.self))
                inside = false
            case UInt8(ascii: "\\"):
                guard let escaped = iterator.next() else { break }
                switch escaped {
                case UInt8(ascii: "n"): bytes.append(10)
                case UInt8(ascii: "r"): bytes.append(13)
                case UInt8(ascii: "t"): bytes.append(9)
                case UInt8(ascii: "a"): bytes.append(7)
                case UInt8(ascii: "b"): bytes.append(8)
                case UInt8(ascii: "x"):
                    let high = iterator.next() ?? 0, low = iterator.next() ?? 0
                    bytes.append(UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) ?? 0)
                default: bytes.append(escaped)
                }
            default: bytes.append(byte)
            }
        }
        return arguments
    }

    /// The part of a key that decides its cluster slot.
    static func hashTag(_ key: String) -> String {
        guard let open = key.firstIndex(of: "{"), let close = key[open...].firstIndex(of: "}"),
              key.index(after: open) < close else { return key }
        return String(key[key.index(after: open)..<close])
    }

    /// Every hash field, status and stage the Lua spells is one Swift names.
    @Test func theLuaSpellsTheSameFieldStatusAndStageNamesAsSwift() throws {
        let fields = Set(JobField.allCases.map(\.rawValue)), stats = Set(StatField.allCases.map(\.rawValue))
        let statuses = Set(JobStatus.allCases.map(\.rawValue)), stages = Set(MoveStage.allCases.map(\.rawValue))
        var seenFields: Set<String> = []
        for (name, text) in try Self.luaFiles() {
            // `tally(stats, 'field', by)` (helpers.lua) is an HINCRBY of the counters.
            let tallies = Self.redisCalls(in: text, opening: "tally(").map { ["'HINCRBY'"] + $0 }
            for call in Self.redisCalls(in: text) + tallies where call.count >= 2 {
                let command = (Self.literal(call[0]) ?? call[0]).uppercased()
                // The job hash (`job`) and the counters (`stats`); other hashes (hits, the bandwidth
                // bucket) have fields of their own.
                guard command.hasPrefix("H"), call[1] == "job" || call[1] == "stats" else { continue }
                let known = call[1] == "stats" ? stats : fields
                let rest = Array(call.dropFirst(2))
                let fieldPositions: [Int]
                switch command {
                case "HSET": fieldPositions = Array(stride(from: 0, to: rest.count, by: 2))
                case "HINCRBY", "HGET": fieldPositions = [0]
                default: fieldPositions = Array(rest.indices)
                }
                for index in fieldPositions {
                    guard let literal = Self.literal(rest[index]) else { continue }
                    #expect(known.contains(literal), "\(name): \(command) names the field '\(literal)', which Swift does not know")
                    seenFields.insert(literal)
                    if command == "HSET", index + 1 < rest.count, let value = Self.literal(rest[index + 1]) {
                        if literal == "status" { #expect(statuses.contains(value), "\(name): status '\(value)' is not a JobStatus") }
                        if literal == "stage" { #expect(stages.contains(value), "\(name): stage '\(value)' is not a MoveStage") }
                    }
                }
            }
            // Every status, stage or submission outcome a script compares with.
            let outcomes = Set(SubmitOutcome.allCases.map(\.rawValue))
            for literal in Self.comparedLiterals(in: text) {
                #expect(statuses.contains(literal) || stages.contains(literal) || outcomes.contains(literal)
                        || JobQueue.LevelChangeStep.allCases.map(\.rawValue).contains(literal) || ["1", "replay", "purge", ""].contains(literal),
                        "\(name) compares with '\(literal)', which is neither a status, a stage nor an outcome")
            }
        }
        #expect(seenFields.isSuperset(of: ["status", "gen", "target", "db_level", "stage", "part", "checksum"]))
    }

    /// The argument expressions of every `redis.call(…)` (or other call `opening` starts).
    static func redisCalls(in text: String, opening: String = "redis.call(") -> [[String]] {
        var calls: [[String]] = []
        var rest = Substring(text)
        while let start = rest.range(of: opening) {
            var depth = 1, quote: Character?
            var current = "", arguments: [String] = []
            var index = start.upperBound
            while index < rest.endIndex, depth > 0 {
                let character = rest[index]
                if let open = quote {
                    current.append(character)
                    if character == open { quote = nil }
                } else if character == "'" || character == "\"" {
                    quote = character
                    current.append(character)
                } else if character == "(" {
                    depth += 1
                    current.append(character)
                } else if character == ")" {
                    depth -= 1
                    if depth > 0 { current.append(character) }
                } else if character == ",", depth == 1 {
                    arguments.append(current.trimmingCharacters(in: .whitespacesAndNewlines))
                    current = ""
                } else {
                    current.append(character)
                }
                index = rest.index(after: index)
            }
            arguments.append(current.trimmingCharacters(in: .whitespacesAndNewlines))
            calls.append(arguments)
            rest = rest[index...]
        }
        return calls
    }

    /// `'text'` → text; anything else → nil.
    static func literal(_ expression: String) -> String? {
        guard expression.count >= 2, expression.hasPrefix("'"), expression.hasSuffix("'") else { return nil }
        let inner = expression.dropFirst().dropLast()
        return inner.contains("'") ? nil : String(inner)
    }

    /// Literals on the right of `==` / `~=` (and inside `published(...)`'s comparisons).
    static func comparedLiterals(in text: String) -> [String] {
        var found: [String] = []
        for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).hasPrefix("--") {
            var rest = Substring(line)
            while let operatorRange = rest.range(of: #"[=~]=\s*'[^']*'"#, options: .regularExpression) {
                let match = rest[operatorRange]
                if let open = match.firstIndex(of: "'") { found.append(String(match[match.index(after: open)...].dropLast())) }
                rest = rest[operatorRange.upperBound...]
            }
        }
        return found
    }

    @Test func aScriptErrorNamesTheScriptFileAndTheLineInIt() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(40)
        let job = try #require(try q.fetch())
        let text = try String(contentsOf: Self.luaDirectory.appendingPathComponent("progress.lua"), encoding: .utf8)
        let line = try #require(text.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex(where: { $0.contains("redis.call('HSET', job, unpack(ARGV, 4))") })) + 1
        // A field without a value: HSET gets nil and Redis refuses, inside progress.lua.
        do {
            try q.redis.evalScript(QueueScripts.progress, keys: [q.shard.job(40)], arguments: [job.id, "w1", job.deliveryToken, "stage"])
            Issue.record("the script should have failed")
        } catch let error as RedisError {
            #expect(error.description.contains("progress.lua:\(line)"), "\(error)")
            #expect(error.command == "EVALSHA progress.lua")
        }
    }
}
