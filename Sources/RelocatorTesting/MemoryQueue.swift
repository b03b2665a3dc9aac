import Foundation
import RelocatorCore

/// The job life cycle in memory, for tests of the rules above the queue without a server (as
/// swift-jobs tests its processor on a memory driver): the same seam as `RedisJobQueue`
/// (`JobQueueing`, `QueueReading`), the same lists, hashes and transitions as the Lua scripts —
/// `QueueContractTests` runs every life-cycle scenario on both and compares. It is not the proof
/// that the queue works: that is the real-Redis tests' job.
///
/// Time comes from `clock` (ms), so tests move it instead of sleeping.
public final class MemoryQueue: JobQueueDriver, JobQueueing, QueueReading, @unchecked Sendable {
    public let keys: KeySchema
    private let condition = NSCondition()
    private var lists: [String: [String]] = [:]
    private var hashes: [String: [String: String]] = [:]
    private var sortedSets: [String: [String: Int64]] = [:]
    private var sets: [String: Set<String>] = [:]
    private var expiries: [String: Int64] = [:]
    private var clockOffset: Int64 = 0
    /// Heartbeats as they were sent (their hash holds only when: it expires).
    private var beats: [String: Heartbeat] = [:]
    /// The placement published, and the rebalancer's lock.
    private var placement: PlacementSnapshot?
    private var rebalancer: (holder: String, until: Int64)?
    /// Calls that throw (for tests of a Redis outage): while true, every call fails.
    private var failing = false

    public init(keys: KeySchema? = nil) {
        self.keys = keys ?? (try! KeySchema())
    }

    public func session() -> any JobQueueSession { self }
    public var shardCount: Int { keys.shardCount }
    public func close() {}

    // MARK: - Test controls

    /// Moves the queue's clock forward (due retries, heartbeats).
    public func advance(_ duration: Duration) {
        locked { clockOffset += duration.milliseconds }
    }

    /// While set, every call throws as a lost connection would.
    public func setUnavailable(_ unavailable: Bool) {
        locked { failing = unavailable }
    }

    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String { "the memory queue is unavailable (test)" }
    }

    /// A list as Redis would answer LRANGE 0 -1 (head first).
    public func list(_ key: String) -> [String] { locked { lists[key] ?? [] } }
    public func hash(_ key: String) -> [String: String] { locked { live(key) ? hashes[key] ?? [:] : [:] } }
    public func job(_ cid: Int64) -> Job? { Job(hash: hash(keys.shard(of: cid).job(cid))) }
    public func scheduled(_ key: String) -> [String: Int64] { locked { sortedSets[key] ?? [:] } }
    public func members(_ key: String) -> Set<String> { locked { sets[key] ?? [] } }

    /// Moves the oldest id of a level's queue into a worker's processing list without claiming it,
    /// as a take whose reply was lost leaves it.
    @discardableResult
    public func loseTake(worker: String, level: String, shard: Int = 0) -> String? {
        locked { rpoplpush(keys.shard(shard).queue(level), keys.shard(shard).processing(worker)) }
    }

    /// Overwrites a job hash field (a test of a hash another program mangled).
    public func corrupt(cid: Int64, field: JobField, value: String) {
        locked { hashes[keys.shard(of: cid).job(cid)]?[field.rawValue] = value }
    }

    /// Writes dead jobs as the scripts leave them (each job's hash, its id pushed on its shard's
    /// dead list, in order: the last is the newest), for tests of long dead-letter lists.
    public func bury(_ jobs: [Job]) {
        locked {
            var pushed: [String: [String]] = [:]
            for job in jobs {
                let shard = keys.shard(of: job.cid)
                hashes[shard.job(job.cid)] = Dictionary(job.fields.compactMap { field, value in value.map { (field.rawValue, $0) } }) { $1 }
                pushed[shard.dead, default: []].append(job.id)
            }
            // One insertion per list (an LPUSH each would copy the list each time).
            for (key, ids) in pushed { lists[key] = ids.reversed() + (lists[key] ?? []) }
        }
    }

    // MARK: - Submitting (enqueue.lua)

    @discardableResult
    public func submit(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String,
                       readAt: Int64? = nil, policy: CountPolicy = .none, sentAt: Int64? = nil, readBound: Int64? = nil,
                       queuedBy: QueuedBy? = nil, fromPlan: Bool = false) -> SubmitResult {
        locked {
            let shard = keys.shard(of: cid)
            let key = shard.job(cid)
            let now = self.now
            var readAt = readAt ?? now
            // The read's age on the caller's clock, placed on the queue's (enqueue.lua does the same).
            if readAt >= 0, let sentAt {
                readAt = sentAt < readAt ? 0 : max(0, now.saturatingSubtract(sentAt.saturatingSubtract(readAt)))
                if let readBound { readAt = max(0, min(readAt, readBound)) }
            }
            var h = live(key) ? hashes[key] ?? [:] : [:]
            let status = h["status"], oldGen = h["gen"], curTarget = h["target"], curDb = h["db_level"], stage = h["stage"]
            let oldID = "\(cid):\(oldGen ?? "")"
            func answer(_ outcome: SubmitOutcome) -> SubmitResult {
                if let queuedBy {
                    if [.created, .retargeted, .reversed].contains(outcome) { set(key, ["queued_by": queuedBy.stored]) }
                    if outcome == .followUp { set(key, ["next_queued_by": queuedBy.stored]) }
                }
                let fields = hashes[key] ?? [:]
                return SubmitResult(outcome: outcome, job: Job(hash: fields), queueNow: now)
            }
            func push(_ gen: Int64) { lpush(shard.queue(target), "\(cid):\(gen)") }
            // Queues a new or re-aimed job, or defers it while the content's residency window lasts.
            func start(_ gen: Int64, origin: String) {
                let moved = Int64(hashes[shard.movedAt]?[String(cid)] ?? "")
                if let residency = policy.residencies[origin]?.milliseconds, let moved, let due = Residency.due(residency: residency, moved: moved, now: now) {
                    set(key, ["status": "deferred", "due_at": String(due),
                              "defer_reason": "moved \((now - moved) / 1000) s ago; \(origin) keeps contents at least \(residency / 1000) s"])
                    sortedSets[shard.deferred, default: [:]]["\(cid):\(gen)"] = due
                    return
                }
                push(gen)
            }
            // Whether the content changed level (or name) at or after a read that has an age (a
            // change stamped further ahead of the clock than a step's tolerance cannot be compared: enqueue.lua).
            func changedSince(_ read: Int64) -> Bool {
                guard read >= 0, let changed = Int64(hashes[shard.movedAt]?[String(cid)] ?? "") else { return false }
                return changed >= read && changed <= now.saturatingAdd(QueueClockEstimate.stepTolerance)
            }
            func unschedule() {
                if status == "retrying" { sortedSets[shard.retry]?[oldID] = nil }
                if status == "deferred" { sortedSets[shard.deferred]?[oldID] = nil }
                if status == "dead" { lists[shard.dead]?.removeAll { $0 == oldID } }
            }
            let published = Self.published(stage)
            if status == "queued" || status == "retrying" || status == "deferred" || (status == "dead" && published) {
                set(key, fromPlan ? ["updated_at": String(now)] : ["count": String(count), "counted_at": String(now), "updated_at": String(now)])
                if !(h["fence"] ?? "").isEmpty {
                    // A reaped delivery may still act: the new target follows after the commit.
                    if target != curTarget {
                        set(key, ["next_target": target])
                        return answer(.followUp)
                    }
                    for field in ["next_target", "next_queued_by"] { hashes[key]?[field] = nil }
                    return answer(.updated)
                }
                if published {
                    if target == curDb {
                        unschedule()
                        push(reverse(key, shard: shard, cid: cid, gen: oldGen, origin: curDb!, target: curTarget!))
                        return answer(.reversed)
                    }
                    if target != curTarget { set(key, ["next_target": target]) } else { for field in ["next_target", "next_queued_by"] { hashes[key]?[field] = nil } }
                    if status == "dead" {
                        if target != curTarget, let queuedBy { set(key, ["next_queued_by": queuedBy.stored]) }
                        unschedule()
                        let gen = newGen(oldGen, shard: shard, cid: cid)
                        set(key, ["status": "queued", "attempts": "0", "gen": String(gen)])
                        retireError(key)
                        push(gen)
                        return answer(.requeued)
                    }
                    return answer(target != curTarget ? .followUp : .updated)
                }
                if target == curTarget {
                    for field in ["next_target", "next_queued_by"] { hashes[key]?[field] = nil }
                    return answer(.updated)
                }
                // Dropped, or re-aimed from the caller's level, on a read from before the content last changed: stale (enqueue.lua).
                if target == curDb, changedSince(readAt) {
                    return SubmitResult(outcome: .staleLevel, job: nil, queueNow: now)
                }
                unschedule()
                if target == curDb, curDb == dbLevel {
                    forget(key)
                    return SubmitResult(outcome: .dropped, job: nil, queueNow: now)
                }
                if target == curDb {
                    // The database names another level than the job's origin: re-aimed from there.
                    let gen = newGen(oldGen, shard: shard, cid: cid)
                    set(key, ["db_level": dbLevel, "target": target, "gen": String(gen), "status": "queued", "attempts": "0"])
                    for field in ["defer_reason", "due_at", "next_target", "next_queued_by"] { hashes[key]?[field] = nil }
                    retireError(key)
                    push(gen)
                    return answer(.retargeted)
                }
                let gen = newGen(oldGen, shard: shard, cid: cid)
                set(key, ["target": target, "gen": String(gen), "status": "queued", "attempts": "0"])
                for field in ["defer_reason", "due_at", "next_target", "next_queued_by"] { hashes[key]?[field] = nil }
                retireError(key)
                start(gen, origin: curDb ?? dbLevel)
                return answer(.retargeted)
            }
            if status == nil || status == "committed" || status == "dead" {
                var origin = dbLevel
                var overridden = false
                let newest = Int64(hashes[shard.gens]?[String(cid)] ?? "") ?? 0
                let committedAt = Int64(h["updated_at"] ?? "0") ?? 0
                // Unless the level changed again after this job (a newer generation): then only the database knows.
                // (A rename takes one too: the job knows the level, not the name.)
                // (A plan's move that read another level than the commit's is not overridden: it is
                // planned again from where the content is.)
                if status == "committed", readAt >= 0, let curTarget, !fromPlan || dbLevel == curTarget, committedAt >= readAt, newest <= (Int64(oldGen ?? "0") ?? 0) {
                    origin = curTarget
                    overridden = true
                }
                if !overridden, changedSince(readAt) {
                    return SubmitResult(outcome: .staleLevel, job: nil, queueNow: now)
                }
                if status == "dead" { unschedule() }
                if target == origin {
                    if status == "dead" { forget(key) }
                    return SubmitResult(outcome: .inPlace, job: nil, queueNow: now)
                }
                let gen = newGen(oldGen, shard: shard, cid: cid)
                forget(key)
                h = ["cid": String(cid), "count": String(count), "filename": filename, "db_level": origin, "target": target,
                     "status": "queued", "attempts": "0", "gen": String(gen), "enqueued_at": String(now), "updated_at": String(now)]
                if fromPlan { h["counted_at"] = "0" }
                hashes[key] = h
                start(gen, origin: origin)
                return answer(.created)
            }
            set(key, fromPlan ? ["updated_at": String(now)] : ["count": String(count), "counted_at": String(now), "updated_at": String(now)])
            if target == curTarget {
                for field in ["next_target", "next_queued_by"] { hashes[key]?[field] = nil }
                return answer(.updated)
            }
            set(key, ["next_target": target])
            return answer(.followUp)
        }
    }

    // MARK: - The scripts' transitions (the seam is built on them: MemoryQueue+Seam.swift)

    /// An id moved into a worker's processing list, not yet claimed.
    struct Taken {
        var id: String
        var shard: Int
        var level: String
    }

    enum Claim {
        case claimed([String: String])
        case stale, leased, paused
    }

    func take(worker: String, shard: Int, levels: [String]) throws -> Taken? {
        try available {
            let keys = self.keys.shard(shard)
            let paused = sets[self.keys.control.paused] ?? []
            for level in levels where !paused.contains(level) {
                if let id = rpoplpush(keys.queue(level), keys.processing(worker)) { return Taken(id: id, shard: shard, level: level) }
            }
            return nil
        }
    }

    func waitForWork(worker: String, shard: Int, level: String, timeout: Duration) throws -> Taken? {
        let deadline = Date().addingTimeInterval(Double(timeout.milliseconds) / 1000)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if failing { throw Unavailable() }
            let keys = self.keys.shard(shard)
            if let id = rpoplpush(keys.queue(level), keys.processing(worker)) { return Taken(id: id, shard: shard, level: level) }
            if !condition.wait(until: deadline) { return nil }
        }
    }

    func claim(_ taken: Taken, worker: String) throws -> Claim {
        try available {
            let shard = keys.shard(taken.shard)
            let processing = shard.processing(worker)
            guard let id = JobID(taken.id), let h = live(shard.job(id.cid)) ? hashes[shard.job(id.cid)] : nil,
                  h["gen"] == String(id.gen), h["status"] == "queued" else {
                lrem(processing, taken.id)
                return .stale
            }
            if (sets[keys.control.paused] ?? []).contains(h["target"] ?? "") {
                lrem(processing, taken.id)
                lists[shard.queue(taken.level), default: []].append(taken.id)
                return .paused
            }
            if live(shard.lease(id.cid)), hashes[shard.lease(id.cid)] != nil {
                // Waits as deferred until the hold ends or the recheck is due (claim.lua).
                let held = expiries[shard.lease(id.cid)].map { $0 - now } ?? Int64.max
                let due = now + max(1, min(held, HeldContent.recheck.milliseconds))
                lrem(processing, taken.id)
                set(shard.job(id.cid), ["status": "deferred", "defer_reason": HeldContent.deferReason, "due_at": String(due), "updated_at": String(now)])
                sortedSets[shard.deferred, default: [:]][taken.id] = due
                return .leased
            }
            let key = shard.job(id.cid)
            let token = (Int64(h["token"] ?? "0") ?? 0) + 1
            set(key, ["status": "moving", "worker_id": worker, "updated_at": String(now), "started_at": String(now), "token": String(token)])
            hashes[key]?["bytes_done"] = nil
            hashes[key]?["bytes_total"] = nil
            hashes[key]?[JobField.pulledFrom.rawValue] = nil
            return .claimed(hashes[key] ?? [:])
        }
    }

    /// The job of `id` when it is `moving` for `worker`'s delivery `token`.
    private func owned(_ id: JobID, _ worker: String, _ token: String) -> String? {
        let key = keys.shard(of: id.cid).job(id.cid)
        guard live(key), let h = hashes[key], h["gen"] == String(id.gen), h["status"] == "moving", h["worker_id"] == worker,
              (h["token"] ?? "") == token else { return nil }
        return key
    }

    /// The job of a delivery that ends (ack, fail, defer), as the scripts find it: its id leaves the
    /// worker's processing list when the delivery owns the job, or when the id's generation is no
    /// longer the job's (no delivery of it can be live); a stale delivery leaves the entry of a live
    /// one of the same worker that took the same id again.
    private func ending(_ id: JobID, _ worker: String, _ token: String) -> String? {
        let shard = keys.shard(of: id.cid)
        let key = shard.job(id.cid)
        let owner = owned(id, worker, token)
        if owner != nil || !live(key) || hashes[key]?["gen"] != String(id.gen) { lrem(shard.processing(worker), id.description) }
        return owner
    }

    func recordProgress(_ id: JobID, worker: String, token: String, _ fields: [(JobField, String)]) throws -> Bool {
        try available {
            guard let key = owned(id, worker, token) else { return false }
            hashes[key]?["fence"] = nil
            for (field, value) in fields { hashes[key]?[field.rawValue] = value }
            return true
        }
    }

    func ack(_ id: JobID, worker: String, token: String, checksum: String, bytes: Int64, foundIn: String?) throws -> Bool {
        try available {
            let shard = keys.shard(of: id.cid)
            guard let key = ending(id, worker, token) else { return false }
            set(key, ["status": "done", "checksum": checksum, "bytes": String(bytes), "updated_at": String(now)])
            if let foundIn { set(key, ["db_level": foundIn]) }
            for field in ["part", "stage", "bytes_done", "bytes_total", "fence", JobField.verified.rawValue] { hashes[key]?[field] = nil }
            retireError(key)
            lpush(shard.done, id.description)
            hashes[shard.movedAt, default: [:]][String(id.cid)] = String(now)
            count(shard, .moved, 1)
            count(shard, .movedBytes, bytes)
            ThroughputRing.add(1, bytes: bytes, now: now, to: &hashes[shard.movedPerMinute, default: [:]])
            return true
        }
    }

    func fail(_ id: JobID, worker: String, token: String, reason: String, message: String, permanent: Bool, delay: Duration,
                     maxAttempts: Int) throws -> Completion {
        try available {
            let shard = keys.shard(of: id.cid)
            guard let key = ending(id, worker, token), let h = hashes[key] else { return .stale }
            hashes[key]?["fence"] = nil
            let attempts = (Int(h["attempts"] ?? "0") ?? 0) + 1
            set(key, ["attempts": String(attempts), "last_error": message, "reason": reason, "worker_id": "", "updated_at": String(now)])
            for field in ["bytes_done", "bytes_total", "started_at"] { hashes[key]?[field] = nil }
            let due = now + delay.milliseconds
            if let next = h["next_target"], let origin = h["db_level"], let target = h["target"] {
                if let asked = h["next_queued_by"], next == origin || !Self.published(h["stage"]) {
                    set(key, ["queued_by": asked])
                    hashes[key]?["next_queued_by"] = nil
                }
                if Self.published(h["stage"]) {
                    if next == origin {
                        let newer = reverse(key, shard: shard, cid: id.cid, gen: String(id.gen), origin: origin, target: target)
                        set(key, ["status": "retrying"])
                        sortedSets[shard.retry, default: [:]]["\(id.cid):\(newer)"] = due
                        count(shard, .retried, 1)
                        return .reversed
                    }
                } else {
                    hashes[key]?["next_target"] = nil
                    if next == origin {
                        forget(key)
                        return .dropped
                    }
                    set(key, ["target": next])
                }
            }
            if permanent || attempts >= maxAttempts {
                set(key, ["status": "dead"])
                lpush(shard.dead, id.description)
                count(shard, .dead, 1)
                return .dead
            }
            set(key, ["status": "retrying"])
            sortedSets[shard.retry, default: [:]][id.description] = due
            count(shard, .retried, 1)
            return .retrying
        }
    }

    func deferJob(_ id: JobID, worker: String, token: String, reason: String, for delay: Duration, locked: Bool) throws -> Bool {
        try available {
            let due = now + max(0, delay.milliseconds)
            let shard = keys.shard(of: id.cid)
            guard let key = ending(id, worker, token) else { return false }
            if locked { hashes[key]?["fence"] = nil }
            set(key, ["status": "deferred", "defer_reason": reason, "due_at": String(due), "worker_id": "", "updated_at": String(now)])
            for field in ["bytes_done", "bytes_total", "started_at"] { hashes[key]?[field] = nil }
            sortedSets[shard.deferred, default: [:]][id.description] = due
            return true
        }
    }

    // MARK: - QueueSession: maintenance

    func heartbeat(worker: String, beat: Heartbeat, ttl: Duration) throws {
        try available {
            sets[keys.control.workers, default: []].insert(worker)
            let key = keys.control.heartbeat(worker)
            var stamped = beat
            stamped.beatAt = now
            beats[worker] = stamped
            hashes[key] = ["beat_at": String(now)]
            expiries[key] = now + ttl.milliseconds
        }
    }

    func agreeOnHalfLife(_ halfLife: Duration?) throws {
        let wanted = HalfLifeChange.recorded(halfLife)
        let recorded: Int64 = try available {
            if hashes[keys.control.config]?["half_life_ms"] == nil { hashes[keys.control.config, default: [:]]["half_life_ms"] = String(wanted) }
            return hashes[keys.control.config]?["half_life_ms"].flatMap { Int64($0) } ?? -1
        }
        if recorded != wanted { throw HalfLifeChange(recorded: recorded, wanted: wanted) }
    }

    func levelsSeen(adding: [String]) throws -> [String] {
        try available {
            sets[keys.control.levelsSeen, default: []].formUnion(adding)
            return (sets[keys.control.levelsSeen] ?? []).sorted()
        }
    }

    func unregister(worker: String) throws {
        try available {
            hashes[keys.control.heartbeat(worker)] = nil
            sets[keys.control.workers]?.remove(worker)
        }
    }

    /// The caller's horizon announced, and the longest any process announced for `kind` that is
    /// still kept (due.lua does the same).
    private func announcedHorizon(_ own: Int64, kind: ScheduleHorizons.Kind, process: String, in shard: ShardKeys) -> Duration {
        if !process.isEmpty {
            set(shard.horizons, [ScheduleHorizons.field(kind, process: process): "\(ScheduleHorizons.announcementUntil(now: now, horizon: own)):\(own)"])
        }
        var longest = own
        for (field, value) in hashes[shard.horizons] ?? [:] {
            let parts = value.split(separator: ":")
            guard parts.count == 2, let until = Int64(parts[0]), let wait = Int64(parts[1]), until >= now else {
                hashes[shard.horizons]?[field] = nil
                continue
            }
            if field.hasPrefix(kind.rawValue + "|") { longest = max(longest, wait) }
        }
        return .milliseconds(longest)
    }

    func promoteDue(limit: Int, horizons: ScheduleHorizons = .none, process: String = "") throws -> Int {
        try available {
            var promoted = 0
            for shard in keys.shards {
                for (set, status, own, kind) in [(shard.retry, "retrying", horizons.retry, ScheduleHorizons.Kind.retry),
                                                 (shard.deferred, "deferred", horizons.deferral, .deferred)] {
                    let horizon = own.map { announcedHorizon(ScheduleHorizons.milliseconds($0), kind: kind, process: process, in: shard) }
                    let due = (sortedSets[set] ?? [:]).filter { ScheduleHorizons.isDue($0.value, now: now, horizon: horizon) }
                        .sorted { $0.value < $1.value }.prefix(limit)
                    for (raw, _) in due {
                        sortedSets[set]?[raw] = nil
                        guard let id = JobID(raw) else { continue }
                        let key = shard.job(id.cid)
                        guard live(key), let h = hashes[key], h["gen"] == String(id.gen), h["status"] == status, let target = h["target"] else { continue }
                        self.set(key, ["status": "queued", "updated_at": String(now)])
                        hashes[key]?["defer_reason"] = nil
                        hashes[key]?["due_at"] = nil
                        lpush(shard.queue(target), raw)
                        promoted += 1
                    }
                }
            }
            return promoted
        }
    }

    func reap(grace: Duration) throws -> Int {
        let dead: [String] = try available {
            let control = keys.control
            var verdicts: [String] = []
            for worker in sets[control.workers] ?? [] {
                let suspect = control.suspect(worker)
                if beating(worker, tolerance: grace) {
                    hashes[suspect] = nil
                } else if live(suspect), let since = Int64(hashes[suspect]?["since"] ?? ""), since <= now.saturatingAdd(grace.milliseconds) {
                    if now - since >= grace.milliseconds { verdicts.append(worker) }
                } else {
                    hashes[suspect] = ["since": String(now)]
                    expiries[suspect] = now + 4 * grace.milliseconds
                }
            }
            return verdicts
        }
        var given = 0
        for worker in dead {
            given += try releaseAll(worker: worker, fence: true)
            try available {
                guard !beating(worker, tolerance: grace) else { return }
                hashes[keys.control.heartbeat(worker)] = nil
                beats[worker] = nil
                sets[keys.control.workers]?.remove(worker)
                hashes[keys.control.suspect(worker)] = nil
            }
        }
        return given
    }

    /// reap-check.lua's `beating`: the heartbeat is there and not stamped more than `tolerance`
    /// ahead of the clock (it stepped back since).
    private func beating(_ worker: String, tolerance: Duration) -> Bool {
        let key = keys.control.heartbeat(worker)
        guard live(key), let hash = hashes[key] else { return false }
        guard let stamped = hash["beat_at"] else { return true }
        guard let at = Int64(stamped) else { return false }
        return at <= now.saturatingAdd(tolerance.milliseconds)
    }

    func held(worker: String) throws -> [HeldJob] {
        try available { keys.shards.flatMap { shard in (lists[shard.processing(worker)] ?? []).map { HeldJob(shard: shard.index, id: $0) } } }
    }

    func giveBack(worker: String, ids: [HeldJob]?, fence: Bool) throws -> Int {
        let all = try ids ?? held(worker: worker)
        return try available {
            var given = 0
            for held in all {
                let (index, raw) = (held.shard, held.id)
                let shard = keys.shard(index)
                lrem(shard.processing(worker), raw)
                guard let id = JobID(raw), live(shard.job(id.cid)), let h = hashes[shard.job(id.cid)], h["gen"] == String(id.gen),
                      h["status"] == "queued" || (h["status"] == "moving" && h["worker_id"] == worker), let target = h["target"] else { continue }
                if h["status"] == "moving" && fence { set(shard.job(id.cid), ["fence": h["token"] ?? "0"]) }
                set(shard.job(id.cid), ["status": "queued", "worker_id": "", "updated_at": String(now)])
                for field in ["bytes_done", "bytes_total", "started_at"] { hashes[shard.job(id.cid)]?[field] = nil }
                lists[shard.queue(target), default: []].append(raw)
                given += 1
            }
            condition.broadcast()
            return given
        }
    }

    func releaseAll(worker: String, fence: Bool) throws -> Int {
        let given = try giveBack(worker: worker, ids: nil, fence: fence)
        return given + (try available {
            var handed = 0
            for shard in keys.shards {
                let ids = lists[shard.committing(worker)] ?? []
                lists[shard.done, default: []].append(contentsOf: ids)
                lists[shard.committing(worker)] = nil
                handed += ids.count
            }
            condition.broadcast()
            return handed
        })
    }

    func paused() throws -> Set<String> {
        try available { sets[keys.control.paused] ?? [] }
    }

    func liveHeartbeats() throws -> [Heartbeat] {
        try available {
            (sets[keys.control.workers] ?? []).sorted().compactMap { worker in
                let key = keys.control.heartbeat(worker)
                guard live(key), hashes[key] != nil else { return nil }
                return beats[worker]
            }
        }
    }

    /// What the committer would publish (tests set it).
    public func publish(_ snapshot: PlacementSnapshot) throws {
        locked { placement = snapshot }
    }

    func placementSnapshot() throws -> PlacementSnapshot? {
        try available { placement }
    }

    func permit(level: String, holder: String, most: Int, ttl: Duration) throws -> Bool {
        try available {
            let key = keys.control.permits(level)
            var held = sortedSets[key] ?? [:]
            held = held.filter { $0.value > now }
            if held[holder] != nil || held.count < most {
                held[holder] = now + ttl.milliseconds
                sortedSets[key] = held
                return true
            }
            sortedSets[key] = held
            return false
        }
    }

    func releasePermit(level: String, holder: String) throws {
        try available { sortedSets[keys.control.permits(level)]?[holder] = nil }
    }

    func reserveRoom(level: String, holder: String, bytes: Int64, room: Int64, ttl: Duration) throws -> (granted: Bool, others: Int64) {
        try available {
            let key = keys.control.reserved(level)
            var held = (hashes[key] ?? [:]).filter { entry in
                entry.value.split(separator: " ").last.flatMap { Int64($0) }.map { $0 > now } ?? false
            }
            let others = held.filter { $0.key != holder }.reduce(Int64(0)) { $0 + (Int64($1.value.split(separator: " ")[0]) ?? 0) }
            let granted = others + max(0, bytes) <= room
            if granted { held[holder] = "\(max(0, bytes)) \(now + ttl.milliseconds)" }
            hashes[key] = held
            return (granted, others)
        }
    }

    func releaseRoom(level: String, holder: String) throws {
        try available { hashes[keys.control.reserved(level)]?[holder] = nil }
    }

    /// Permits held now, for tests.
    public func permitsHeld(_ level: String) -> Int { locked { (sortedSets[keys.control.permits(level)] ?? [:]).filter { $0.value > now }.count } }

    func takeBandwidth(level: String, rate: Int64, bytes: Int64) throws -> Duration {
        try available {
            let key = keys.control.bandwidth(level)
            let want = Double(min(bytes, rate))
            let capacity = max(want, Double(rate) / 10)
            var tokens = Double(hashes[key]?["tokens"] ?? "") ?? 0
            let at = Int64(hashes[key]?["at"] ?? "") ?? now
            tokens = min(capacity, tokens + Double(now - at) * Double(rate) / 1000)
            var wait: Int64 = 0
            if tokens >= want { tokens -= want } else { wait = Int64(((want - tokens) * 1000 / Double(rate)).rounded(.up)) }
            hashes[key] = ["tokens": String(tokens), "at": String(now)]
            return .milliseconds(wait)
        }
    }

    public func pause(_ level: String) { locked { _ = sets[keys.control.paused, default: []].insert(level) } }
    public func resume(_ level: String) { locked { _ = sets[keys.control.paused]?.remove(level) } }

    // MARK: - QueueSession: committers

    func takeDone(committer: String, shard index: Int, max: Int, fresh: Bool) throws -> [(id: String, fields: [String: String])] {
        try available {
            let shard = keys.shard(index)
            var ids = fresh ? [] : Array((lists[shard.committing(committer)] ?? []).prefix(max))
            while ids.count < max, let id = rpoplpush(shard.done, shard.committing(committer)) { ids.append(id) }
            return ids.map { raw in
                let key = JobID(raw).map { shard.job($0.cid) } ?? ""
                return (raw, live(key) ? hashes[key] ?? [:] : [:])
            }
        }
    }

    func waitForDone(committer: String, shard index: Int, timeout: Duration) throws -> Bool {
        let deadline = Date().addingTimeInterval(Double(timeout.milliseconds) / 1000)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if failing { throw Unavailable() }
            let shard = keys.shard(index)
            if rpoplpush(shard.done, shard.committing(committer)) != nil { return true }
            if !condition.wait(until: deadline) { return false }
        }
    }

    func markCommitted(ids: [String], shard index: Int, committer: String?, ttl: Duration, levels: [String],
                              policy: CountPolicy) throws -> (followUps: Int, unknownLevel: [String]) {
        try available {
            let shard = keys.shard(index)
            let list = committer.map(shard.committing) ?? shard.done
            var followUps = 0
            var unknown: [String] = []
            for raw in ids {
                lrem(list, raw)
                guard let id = JobID(raw) else { continue }
                let key = shard.job(id.cid)
                guard live(key), let h = hashes[key], h["gen"] == String(id.gen), h["status"] == "done", let target = h["target"] else { continue }
                count(shard, .committed, 1)
                ThroughputRing.add(1, bytes: 0, now: now, to: &hashes[shard.committedPerMinute, default: [:]])
                var next = h["next_target"]
                if let wanted = next, wanted != target, !levels.contains(wanted) {
                    unknown.append(raw)
                    next = nil
                }
                if let next, next != target {
                    let newer = newGen(String(id.gen), shard: shard, cid: id.cid)
                    // (Its last count keeps its time: until now the time it was enqueued; committed.lua does the same.)
                    if h["counted_at"] == nil, let enqueued = h["enqueued_at"] { set(key, ["counted_at": enqueued]) }
                    set(key, ["db_level": target, "target": next, "status": "queued", "attempts": "0", "gen": String(newer),
                              "enqueued_at": String(now), "updated_at": String(now)])
                    for field in ["next_target", "checksum", "bytes", "worker_id", "last_error", "reason", "earlier_error", "started_at"] {
                        hashes[key]?[field] = nil
                    }
                    set(key, ["queued_by": QueuedBy.followUpPrefix(after: target) + (h["next_queued_by"] ?? "a count sent while it moved\n")])
                    hashes[key]?["next_queued_by"] = nil
                    expiries[key] = nil
                    let moved = Int64(hashes[shard.movedAt]?[String(id.cid)] ?? "")
                    if let residency = policy.residencies[target], let due = Residency.due(residency: residency.milliseconds, moved: moved, now: now) {
                        set(key, ["status": "deferred", "due_at": String(due),
                                  "defer_reason": "just moved to \(target), which keeps contents at least \(residency.milliseconds / 1000) s"])
                        sortedSets[shard.deferred, default: [:]]["\(id.cid):\(newer)"] = due
                    } else {
                        lpush(shard.queue(next), "\(id.cid):\(newer)")
                    }
                    followUps += 1
                } else {
                    set(key, ["status": "committed", "updated_at": String(now)])
                    hashes[key]?["next_target"] = nil
                    hashes[key]?["next_queued_by"] = nil
                    expiries[key] = now + ttl.milliseconds
                }
                hashes[shard.movedAt, default: [:]][String(id.cid)] = String(now)
            }
            return (followUps, unknown)
        }
    }

    // MARK: - The data structures

    private var now: Int64 { WallClock.milliseconds() + clockOffset }
    var clockOffsetMilliseconds: Int64 { locked { clockOffset } }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    func available<T>(_ body: () throws -> T) throws -> T {
        try locked {
            if failing { throw Unavailable() }
            return try body()
        }
    }

    /// False once a key with a time to live has expired (it is then removed).
    private func live(_ key: String) -> Bool {
        if let expiry = expiries[key], expiry <= now {
            hashes[key] = nil
            expiries[key] = nil
            return false
        }
        return true
    }

    private func set(_ key: String, _ fields: [String: String]) {
        hashes[key, default: [:]].merge(fields) { $1 }
    }

    private func lpush(_ key: String, _ value: String) {
        lists[key, default: []].insert(value, at: 0)
        condition.broadcast()
    }

    func lrem(_ key: String, _ value: String) {
        if let index = lists[key]?.firstIndex(of: value) { lists[key]?.remove(at: index) }
    }

    private func rpoplpush(_ source: String, _ destination: String) -> String? {
        guard let value = lists[source]?.popLast() else { return nil }
        lists[destination, default: []].insert(value, at: 0)
        return value
    }

    private func count(_ shard: ShardKeys, _ field: StatField, _ amount: Int64) {
        let current = Int64(hashes[shard.stats]?[field.rawValue] ?? "0") ?? 0
        hashes[shard.stats, default: [:]][field.rawValue] = String(current + amount)
    }

    /// Higher than `old` and than every generation the content had (the `gens` hash).
    private func newGen(_ old: String?, shard: ShardKeys, cid: Int64) -> Int64 {
        var before = Int64(old ?? "0") ?? 0
        if let last = Int64(hashes[shard.gens]?[String(cid)] ?? ""), last > before, last < (1 << 53) - 1 { before = last }
        let gen = now > before ? now : before + 1
        hashes[shard.gens, default: [:]][String(cid)] = String(gen)
        return gen
    }

    private static func published(_ stage: String?) -> Bool { stage == "publishing" || stage == "published" || stage == "source_removed" }

    private func forget(_ key: String) {
        hashes[key] = nil
        expiries[key] = nil
    }

    private func retireError(_ key: String) {
        if let message = hashes[key]?["last_error"] {
            hashes[key]?["earlier_error"] = message
            hashes[key]?["last_error"] = nil
            hashes[key]?["reason"] = nil
        }
    }

    private func reverse(_ key: String, shard: ShardKeys, cid: Int64, gen: String?, origin: String, target: String) -> Int64 {
        let newer = newGen(gen, shard: shard, cid: cid)
        set(key, ["db_level": target, "target": origin, "gen": String(newer), "attempts": "0", "status": "queued",
                  "worker_id": "", "updated_at": String(now)])
        for field in ["next_target", "next_queued_by", "stage", "bytes_done", "bytes_total", "started_at"] { hashes[key]?[field] = nil }
        retireError(key)
        return newer
    }

    // MARK: - QueueSession: reconciliation

    public func jobCIDs() throws -> [Int64] {
        try available {
            let prefixes = keys.shards.map { $0.job(0).dropLast() }
            return hashes.keys.compactMap { key in
                guard live(key), let prefix = prefixes.first(where: { key.hasPrefix($0) }) else { return nil }
                return Int64(key.dropFirst(prefix.count))
            }.sorted()
        }
    }

    func jobState(cid: Int64) throws -> (status: JobStatus, gen: Int64)? {
        try available {
            let key = keys.shard(of: cid).job(cid)
            guard live(key), let h = hashes[key], let status = h["status"].flatMap(JobStatus.init(rawValue:)),
                  let gen = h["gen"].flatMap(Int64.init) else { return nil }
            return (status, gen)
        }
    }

    /// Orphans are a Redis matter (a lost write); the memory queue never loses one.
    func orphans(cids: [Int64], fix: Bool) throws -> [Orphan] { [] }

    func lease(cid: Int64, token: String, ttl: Duration) throws -> Bool {
        try available {
            let shard = keys.shard(of: cid)
            if live(shard.job(cid)), let status = hashes[shard.job(cid)]?["status"], status != "committed", status != "dead" { return false }
            let key = shard.lease(cid)
            if live(key), hashes[key] != nil { return false }
            hashes[key] = ["token": token]
            expiries[key] = now + ttl.milliseconds
            return true
        }
    }

    func inquire(token: String, key: String, cid: Int64, filename: String, ttl: Duration) throws {
        try available {
            let name = keys.control.inquiry(token)
            if !live(name) { hashes[name] = nil }
            hashes[name, default: [:]][HostInquiry.keyField] = key
            hashes[name, default: [:]][String(cid)] = filename
            expiries[name] = now + max(1, ttl.milliseconds)
        }
    }

    func inquiry(token: String, cid: Int64) throws -> [String] {
        try available {
            let name = keys.control.inquiry(token)
            guard live(name), let key = hashes[name]?[HostInquiry.keyField], let filename = hashes[name]?[String(cid)] else { return [] }
            return [key, filename]
        }
    }

    func levelChangeGeneration(cid: Int64) throws -> Int64? {
        try available {
            let shard = keys.shard(of: cid)
            let job = live(shard.job(cid)) ? hashes[shard.job(cid)] : nil
            if let status = job?["status"], status != "committed", status != "dead" { return nil }
            return newGen(job?["gen"], shard: shard, cid: cid)
        }
    }

    func levelChanged(cid: Int64, filename: String? = nil, holder: String? = nil) throws {
        try available {
            let shard = keys.shard(of: cid)
            hashes[shard.movedAt, default: [:]][String(cid)] = String(now)
            // A rename takes a generation after every job so far (level-changed.lua).
            if filename != nil, holder != nil { _ = newGen(nil, shard: shard, cid: cid) }
            // A rename: a job not yet taken takes the new name, while the holder's lease holds
            // (level-changed.lua).
            let job = shard.job(cid), lease = shard.lease(cid)
            if let filename, let holder, live(lease), hashes[lease]?["token"] == holder, live(job), let status = hashes[job]?["status"], status == "queued" || status == "deferred", hashes[job]?["stage"] == nil {
                hashes[job]?["filename"] = filename
            }
        }
    }

    /// The memory queue keeps no residents: what it forgets is when the content last moved and its hits.
    func forgetContent(cid: Int64) throws {
        try available {
            let shard = keys.shard(of: cid)
            hashes[shard.movedAt]?[String(cid)] = nil
            hashes[shard.hits]?[String(cid)] = nil
        }
    }

    func unlease(cid: Int64, token: String) throws {
        try available {
            let key = keys.shard(of: cid).lease(cid)
            if hashes[key]?["token"] == token { hashes[key] = nil }
        }
    }

    // MARK: - Operators and placement

    func dead(_ action: DeadAction, cids: [Int64]?, by who: String = "an operator") throws -> [(id: String, outcome: DeadOutcome)] {
        try available {
            let wanted = cids.map(Set.init)
            var results: [(id: String, outcome: DeadOutcome)] = []
            for shard in keys.shards {
                for raw in lists[shard.dead] ?? [] {
                    guard let id = JobID(raw) else {
                        if wanted == nil {
                            lists[shard.dead]?.removeAll { $0 == raw }
                            results.append((raw, .stale))
                        }
                        continue
                    }
                    if let wanted, !wanted.contains(id.cid) { continue }
                    lists[shard.dead]?.removeAll { $0 == raw }
                    let key = shard.job(id.cid)
                    guard live(key), let h = hashes[key], h["gen"] == String(id.gen), h["status"] == "dead",
                          let target = h["target"], let origin = h["db_level"] else {
                        results.append((raw, .stale))
                        continue
                    }
                    if action == .replay {
                        let newer = newGen(h["gen"], shard: shard, cid: id.cid)
                        set(key, ["status": "queued", "attempts": "0", "worker_id": "", "updated_at": String(now), "gen": String(newer)])
                        retireError(key)
                        lpush(shard.queue(target), "\(id.cid):\(newer)")
                        set(key, ["queued_by": QueuedBy.replay(by: who, earlier: h["queued_by"].map(QueuedBy.init(stored:))).stored])
                        results.append((raw, .replayed))
                    } else if Self.published(h["stage"]) {
                        let newer = reverse(key, shard: shard, cid: id.cid, gen: h["gen"], origin: origin, target: target)
                        lpush(shard.queue(origin), "\(id.cid):\(newer)")
                        set(key, ["queued_by": QueuedBy.purgeReversal(by: who, copyOn: target, backTo: origin).stored])
                        results.append((raw, .reversed))
                    } else {
                        forget(key)
                        results.append((raw, .purged))
                    }
                }
            }
            return results
        }
    }

    func holdRebalancer(_ holder: String, ttl: Duration) throws -> Bool {
        try available {
            if let current = rebalancer, current.holder != holder, current.until > now { return false }
            rebalancer = (holder, now + max(1, ttl.milliseconds))
            return true
        }
    }

    /// does-not-fit.lua: a deferred job (not fenced) goes to the dead letters.
    func doesNotFit(_ id: JobID, message: String) throws -> Bool {
        try available {
            let shard = keys.shard(of: id.cid)
            let key = shard.job(id.cid)
            guard live(key), let h = hashes[key], h["gen"] == String(id.gen), h["status"] == "deferred", (h["fence"] ?? "").isEmpty,
                  sortedSets[shard.deferred]?.removeValue(forKey: id.description) != nil else { return false }
            set(key, ["status": "dead", "reason": FailureReason.doesNotFit.rawValue, "last_error": message, "updated_at": String(now)])
            hashes[key]?["defer_reason"] = nil
            hashes[key]?["due_at"] = nil
            lpush(shard.dead, id.description)
            count(shard, .dead, 1)
            return true
        }
    }

    /// hit.lua: the counter decays by half every half-life (nothing when the clock stepped back)
    /// and gains `hits`, within the range of a count.
    func hit(cid: Int64, hits: Double, halfLife: Duration) throws -> Double {
        try available {
            let shard = keys.shard(of: cid)
            let stored = hashes[shard.hits]?[String(cid)]?.split(separator: ":")
            var value = stored.flatMap { $0.first.flatMap { Double($0) } } ?? 0
            let at = stored.flatMap { $0.last.flatMap { Int64($0) } } ?? now
            let elapsed = Double(max(0, now - at))
            value = value * pow(2, -elapsed / Double(max(1, halfLife.milliseconds))) + hits
            if value.isNaN || value < 0 { value = 0 }
            value = min(value, Double(CountBound.max))
            hashes[shard.hits, default: [:]][String(cid)] = "\(value):\(now)"
            return value
        }
    }

    public func stats(levels: [String]) throws -> QueueStats {
        try available {
            let paused = sets[keys.control.paused] ?? []
            var stats = QueueStats(levels: levels.map { QueueStats.Level(level: $0, paused: paused.contains($0)) })
            let workers = (sets[keys.control.workers] ?? []).sorted()
            var heldBy: [String: Int] = [:]
            for shard in keys.shards {
                for index in levels.indices {
                    let queue = lists[shard.queue(levels[index])] ?? []
                    stats.levels[index].depth += queue.count
                    if let oldest = queue.last.flatMap(JobID.init) {
                        stats.levels[index].oldestAgeMilliseconds = max(stats.levels[index].oldestAgeMilliseconds ?? 0, max(0, now - oldest.gen))
                    }
                }
                stats.retry += sortedSets[shard.retry]?.count ?? 0
                stats.deferred += sortedSets[shard.deferred]?.count ?? 0
                stats.dead += lists[shard.dead]?.count ?? 0
                stats.done += lists[shard.done]?.count ?? 0
                for (name, value) in hashes[shard.stats] ?? [:] {
                    if let field = StatField(rawValue: name), let number = Int64(value) { stats.totals[field] = (stats.totals[field] ?? 0) + number }
                }
                for worker in workers {
                    let held = (lists[shard.processing(worker)]?.count ?? 0) + (lists[shard.committing(worker)]?.count ?? 0)
                    stats.processing += lists[shard.processing(worker)]?.count ?? 0
                    stats.committing += lists[shard.committing(worker)]?.count ?? 0
                    heldBy[worker, default: 0] += held
                }
            }
            for worker in workers {
                let key = keys.control.heartbeat(worker)
                let alive = live(key) && hashes[key] != nil
                // The fields of its heartbeat as the queue keeps them (`Heartbeat.fields`), as Redis' hash holds them.
                var info = beats[worker]?.fields ?? [:]
                info[.beatAt] = beats[worker]?.beatAt.map(String.init)
                stats.workers.append(QueueStats.Worker(worker: worker, alive: alive, info: alive ? info : [:], held: heldBy[worker] ?? 0))
            }
            return stats
        }
    }

    /// The memory queue keeps no residents sets (placement is tested on Redis).
    public func residents(level: String, _ which: ResidentQuery) throws -> [Resident] {
        try available { [] }
    }
}
