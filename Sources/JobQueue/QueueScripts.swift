import RedisClient

/// The Lua scripts of the job life cycle, one file each under `Sources/JobQueue/Lua/`, embedded in
/// the binary. `helpers.lua` is put in front of each, after the script's first line: a Redis 7
/// shebang that declares its flags (`#!lua`: refused while Redis is over its `maxmemory`;
/// `#!lua flags=allow-oom` for the scripts that only move or free what exists; `no-writes`). A
/// Redis error names the script's file and the line in it (`RedisScript.translate`). docs/QUEUE.md
/// lists which script does each transition.
enum QueueScripts {
    private static func script(_ name: String, _ bytes: [UInt8]) -> RedisScript {
        RedisScript(name: name, body: String(decoding: bytes, as: UTF8.self),
                    preludeName: "helpers.lua", prelude: String(decoding: PackageResources.helpers_lua, as: UTF8.self))
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
        deadAction, restore, lease, unlease, reapCheck, forgetWorker, hit, permit, bandwidth, levelChanged, hold, room,
        writable, doesNotFit,
    ]
}
