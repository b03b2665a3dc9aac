import RedisClient
import RelocatorCore

/// The Lua scripts of the job life cycle, one file each under `Sources/JobQueue/Lua/`, embedded in
/// the binary. `helpers.lua` is put in front of each, after the script's first line: a Redis 7
/// shebang that declares its flags (`#!lua`: refused while Redis is over its `maxmemory`;
/// `#!lua flags=allow-oom` for the scripts that only move or free what exists; `no-writes`). A
/// Redis error names the script's file and the line in it (`RedisScript.translate`). docs/QUEUE.md
/// lists which script does each transition.
enum QueueScripts {
    private static func script(_ name: String, _ bytes: [UInt8]) -> RedisScript {
        var body = String(decoding: bytes, as: UTF8.self)
        var prelude = String(decoding: PackageResources.helpers_lua, as: UTF8.self)
        if let mutant = Mutant.active { (body, prelude) = mutated(name, body, prelude, mutant) }
        if !readsClock(body) { prelude = withoutClock(prelude) }
        return RedisScript(name: name, body: body, preludeName: "helpers.lua", prelude: prelude)
    }

    /// The helpers' lines that ask Redis for its time (`now`).
    static let clockLines = "local clock = redis.call('TIME')\nlocal now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)\n"

    /// The helpers that read `now`.
    static let clockHelpers = ["beating", "newGen", "reverse", "countScore", "countThisMinute", "residencyDue"]

    /// True when a script's body reads Redis' clock: it names `now` or calls a helper that does.
    /// The others (taking ids, recording progress) skip the TIME command every script would
    /// otherwise run first.
    static func readsClock(_ body: String) -> Bool {
        for line in body.split(separator: "\n") {
            // Comments left out (a `--` inside a string literal cuts too much, which only keeps the clock).
            let code = Array(line.utf8)
            let dash = UInt8(ascii: "-")
            let end = (0..<code.count).first { code[$0] == dash && $0 + 1 < code.count && code[$0 + 1] == dash } ?? code.count
            var index = 0
            while index < end {
                guard isIdentifier(code[index]) else { index += 1; continue }
                let start = index
                while index < end, isIdentifier(code[index]) { index += 1 }
                let word = String(decoding: code[start..<index], as: UTF8.self)
                let calls = index < end && code[index] == UInt8(ascii: "(")
                if word == "now" || (calls && clockHelpers.contains(word)) { return true }
            }
        }
        return false
    }

    private static func isIdentifier(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
    }

    /// The helpers without the clock: `now` is nil (arithmetic on it fails loudly). Line for line
    /// the same, so that an error's line in helpers.lua stays right.
    static func withoutClock(_ prelude: String) -> String {
        precondition(prelude.contains(clockLines), "helpers.lua no longer reads the clock as QueueScripts expects")
        return prelude.replacing(clockLines, with: "-- (this script reads no clock)\nlocal now = nil\n")
    }

    /// The scripts' mutants (`Mutant`, debug builds only): one line changed.
    private static func mutated(_ name: String, _ body: String, _ prelude: String, _ mutant: Mutant) -> (String, String) {
        let changes: [(Mutant, String, String, String)] = [
            (.pushCoalescedTwice, "enqueue.lua", "  if target == curTarget then redis.call('HDEL', job, 'next_target', 'next_queued_by') return answer('updated') end",
             "  if target == curTarget then redis.call('HDEL', job, 'next_target', 'next_queued_by') push(oldGen) return answer('updated') end"),
            (.fenceIgnored, "enqueue.lua", "  if fenced(job) then", "  if false then"),
            (.tokenIgnored, "progress.lua", " or (h[4] or '') ~= token then return 0 end", " then return 0 end"),
            (.ackWithoutToken, "ack.lua", " or (h[4] or '') ~= token then\n    if not cid", " then\n    if not cid"),
            (.gensIgnored, "helpers.lua", "  if last > before and last < 9007199254740991 then before = last end\n", ""),
        ]
        var (body, prelude) = (body, prelude)
        for (candidate, file, from, to) in changes where candidate == mutant {
            if file == "helpers.lua" {
                precondition(prelude.contains(from), "mutant \(mutant.rawValue): helpers.lua has no '\(from)'")
                prelude = prelude.replacingOccurrences(of: from, with: to)
            } else if file == name {
                precondition(body.contains(from), "mutant \(mutant.rawValue): \(name) has no '\(from)'")
                body = body.replacingOccurrences(of: from, with: to)
            }
        }
        return (body, prelude)
    }

    static let enqueue = script("enqueue.lua", PackageResources.enqueue_lua)
    static let take = script("take.lua", PackageResources.take_lua)
    static let claim = script("claim.lua", PackageResources.claim_lua)
    static let progress = script("progress.lua", PackageResources.progress_lua)
    static let ack = script("ack.lua", PackageResources.ack_lua)
    static let fail = script("fail.lua", PackageResources.fail_lua)
    static let deferJob = script("defer.lua", PackageResources.defer_lua)
    static let due = script("due.lua", PackageResources.due_lua)
    static let promote = script("promote.lua", PackageResources.promote_lua)
    static let giveback = script("giveback.lua", PackageResources.giveback_lua)
    static let handback = script("handback.lua", PackageResources.handback_lua)
    static let takeDone = script("take-done.lua", PackageResources.take_done_lua)
    static let committed = script("committed.lua", PackageResources.committed_lua)
    static let deadAction = script("dead-action.lua", PackageResources.dead_action_lua)
    static let restore = script("restore.lua", PackageResources.restore_lua)
    static let lease = script("lease.lua", PackageResources.lease_lua)
    static let unlease = script("unlease.lua", PackageResources.unlease_lua)
    static let reapCheck = script("reap-check.lua", PackageResources.reap_check_lua)
    static let forgetWorker = script("forget-worker.lua", PackageResources.forget_worker_lua)
    static let heartbeat = script("heartbeat.lua", PackageResources.heartbeat_lua)
    static let hit = script("hit.lua", PackageResources.hit_lua)
    static let permit = script("permit.lua", PackageResources.permit_lua)
    static let bandwidth = script("bandwidth.lua", PackageResources.bandwidth_lua)
    static let levelChanged = script("level-changed.lua", PackageResources.level_changed_lua)
    static let hold = script("hold.lua", PackageResources.hold_lua)
    static let room = script("room.lua", PackageResources.room_lua)
    static let writable = script("writable.lua", PackageResources.writable_lua)
    static let doesNotFit = script("does-not-fit.lua", PackageResources.does_not_fit_lua)

    /// Every script, for tests that run them all.
    static let all: [RedisScript] = [
        enqueue, take, claim, progress, ack, fail, deferJob, due, promote, giveback, handback, takeDone, committed,
        deadAction, restore, lease, unlease, reapCheck, forgetWorker, heartbeat, hit, permit, bandwidth, levelChanged, hold, room,
        writable, doesNotFit,
    ]
}
