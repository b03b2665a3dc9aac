import Foundation
import RelocatorCore

/// The seam over the memory queue's transitions, operation for operation what `RedisJobQueue`
/// does over the scripts.
extension MemoryQueue {
    // MARK: - Submitting

    public func submit(_ requests: [SubmitRequest]) throws -> [SubmitResult] {
        try available {}
        return requests.map {
            submit(cid: $0.cid, count: $0.count, filename: $0.filename, dbLevel: $0.dbLevel, target: $0.target, readAt: $0.readAt,
                   policy: $0.policy, sentAt: $0.sentAt, readBound: $0.readBound, queuedBy: $0.queuedBy, fromPlan: $0.fromPlan)
        }
    }

    // MARK: - Worker slots

    public func next(_ request: NextRequest) throws -> NextResult {
        let shards = shardCount
        guard !request.levels.isEmpty else { return .idle }
        for step in 0..<shards {
            let shard = (request.rotation + step) % shards
            while let taken = try take(worker: request.worker, shard: shard, levels: request.levels) {
                if let result = try claimed(taken, worker: request.worker) { return result }
            }
        }
        let pair = request.rotation % (shards * request.levels.count)
        guard let taken = try waitForWork(worker: request.worker, shard: pair / request.levels.count,
                                          level: request.levels[pair % request.levels.count], timeout: request.wait)
        else { return .idle }
        return try claimed(taken, worker: request.worker) ?? .idle
    }

    private func claimed(_ taken: Taken, worker: String) throws -> NextResult? {
        switch try claim(taken, worker: worker) {
        case .claimed(let fields):
            switch Job.decode(fields) {
            case .success(let job): return .delivery(Delivery(job: job, shard: taken.shard, level: taken.level))
            case .failure(let problem):
                return .undecodable(HeldJob(shard: taken.shard, id: taken.id), token: fields[JobField.token.rawValue] ?? "", problem: "\(problem)")
            }
        case .paused: return .paused(level: taken.level)
        case .stale, .leased: return nil
        }
    }

    public func record(_ delivery: Delivery, _ progress: MoveProgress) throws -> Bool {
        switch progress {
        case .publishing(let checksum, let bytes, let version):
            return try recordProgress(delivery.id, worker: delivery.worker, token: delivery.token,
                                      [(.checksum, checksum.description), (.bytes, String(bytes)), (.stage, MoveStage.publishing.rawValue),
                                       (.sourceVersion, version ?? "")])
        case .copied(let done, let total):
            return try recordProgress(delivery.id, worker: delivery.worker, token: delivery.token,
                                      [(.bytesDone, String(done)), (.bytesTotal, String(total))])
        case .verified(let done, let total):
            return try recordProgress(delivery.id, worker: delivery.worker, token: delivery.token,
                                      [(.verified, String(done)), (.bytesDone, String(done)), (.bytesTotal, String(total))])
        case .published:
            return try recordProgress(delivery.id, worker: delivery.worker, token: delivery.token, [(.stage, MoveStage.published.rawValue)])
        case .copyWithdrawn:
            return try recordProgress(delivery.id, worker: delivery.worker, token: delivery.token, [(.stage, MoveStage.copying.rawValue)])
        case .transferSecret(let digest):
            return try recordProgress(delivery.id, worker: delivery.worker, token: delivery.token,
                                      [(.transferKey, TransferProtocol.transferKey(token: delivery.token, digest: digest))])
        case .pulling(let route):
            return try recordProgress(delivery.id, worker: delivery.worker, token: delivery.token, [(.pulledFrom, route.stored)])
        case .pullStarted(let digest, let route):
            return try recordProgress(delivery.id, worker: delivery.worker, token: delivery.token,
                                      [(.transferKey, TransferProtocol.transferKey(token: delivery.token, digest: digest)),
                                       (.pulledFrom, route.stored)])
        }
    }

    public func complete(_ delivery: Delivery, _ outcome: Outcome) throws -> Completion {
        switch outcome {
        case .moved(let checksum, let bytes, _, let foundIn):
            return try ack(delivery.id, worker: delivery.worker, token: delivery.token, checksum: checksum.description, bytes: bytes,
                           foundIn: foundIn) ? .done : .stale
        case .failed(let reason, let message, let permanent, let delay, let maxAttempts):
            return try fail(delivery.id, worker: delivery.worker, token: delivery.token, reason: reason.rawValue, message: message,
                            permanent: permanent, delay: delay, maxAttempts: maxAttempts)
        case .deferred(let reason, let delay, let lockHeld):
            return try deferJob(delivery.id, worker: delivery.worker, token: delivery.token, reason: reason, for: delay, locked: lockHeld)
                ? .deferred : .stale
        }
    }

    // MARK: - Committers

    public func nextDone(committer: String, shard: Int, max: Int, wait: Duration, fresh: Bool) throws -> DoneBatch {
        var taken = try takeDone(committer: committer, shard: shard, max: max, fresh: fresh)
        if taken.isEmpty, wait > .zero, try waitForDone(committer: committer, shard: shard, timeout: wait) {
            taken = try takeDone(committer: committer, shard: shard, max: max, fresh: false)
        }
        return DoneBatch(shard: shard, ids: taken.map(\.id), jobs: taken.compactMap { item in
            guard let job = Job(hash: item.fields), job.status == .done, job.id == item.id else { return nil }
            return job
        })
    }

    public func commit(_ batch: DoneBatch, committer: String?, levels: [String], policy: CountPolicy, keep: Duration) throws -> CommitResult {
        let result = try markCommitted(ids: batch.ids, shard: batch.shard, committer: committer, ttl: keep, levels: levels, policy: policy)
        return CommitResult(followUps: result.followUps, unknownLevel: result.unknownLevel)
    }

    // MARK: - Maintenance

    public func maintain(_ request: MaintenanceRequest) throws -> MaintenanceReport {
        try heartbeat(worker: request.beat.id, beat: request.beat, ttl: request.ttl)
        var report = MaintenanceReport()
        if request.promoteDue { report.promoted = try promoteDue(limit: 500, horizons: request.horizons, process: request.beat.id) }
        if let grace = request.reapAfter { report.reaped = try reap(grace: grace) }
        report.paused = try paused()
        report.placement = try placementSnapshot()
        if request.listHeld { report.held = try held(worker: request.beat.id) }
        return report
    }

    // MARK: - Admission

    public func admit(_ request: AdmissionRequest) throws -> AdmissionAnswer {
        switch request {
        case .permit(let level, let holder, let most, let ttl):
            return try permit(level: level, holder: holder, most: most, ttl: ttl) ? .granted : .refused
        case .releasePermit(let level, let holder):
            try releasePermit(level: level, holder: holder)
            return .granted
        case .room(let level, let holder, let bytes, let room, let ttl):
            let answer = try reserveRoom(level: level, holder: holder, bytes: bytes, room: room, ttl: ttl)
            return answer.granted ? .granted : .roomHeld(others: answer.others)
        case .releaseRoom(let level, let holder):
            try releaseRoom(level: level, holder: holder)
            return .granted
        case .bandwidth(let level, let rate, let bytes):
            let wait = try takeBandwidth(level: level, rate: rate, bytes: bytes)
            return wait == .zero ? .granted : .wait(wait)
        }
    }

    // MARK: - Control

    public func control(_ action: ControlAction) throws -> ControlResult {
        switch action {
        case .start:
            try available {}
            return .warnings([])
        case .pause(let level):
            try available {}
            pause(level)
            return .done
        case .resume(let level):
            try available {}
            resume(level)
            return .done
        case .dead(let action, let cids, let who):
            return .dead(try dead(action, cids: cids, by: who))
        case .publishPlacement(let snapshot):
            try available {}
            try publish(snapshot)
            return .done
        case .holdRebalancer(let holder, let ttl):
            return .flag(try holdRebalancer(holder, ttl: ttl))
        case .doesNotFit(let id, let message):
            return .flag(try doesNotFit(id, message: message))
        case .release(let worker, let ids, let fence):
            if let ids { return .count(try giveBack(worker: worker, ids: ids, fence: fence)) }
            return .count(try releaseAll(worker: worker, fence: fence))
        case .unregister(let worker):
            try unregister(worker: worker)
            return .done
        case .lease(let cid, let token, let ttl):
            return .flag(try lease(cid: cid, token: token, ttl: ttl))
        case .unlease(let cid, let token):
            try unlease(cid: cid, token: token)
            return .done
        case .levelGeneration(let cid):
            return .count(try levelChangeGeneration(cid: cid).map { Int(clamping: $0) } ?? -1)
        case .levelChanged(let cid, let filename, let holder):
            try levelChanged(cid: cid, filename: filename, holder: holder)
            return .done
        case .forgetContent(let cid, _):
            try forgetContent(cid: cid)
            return .done
        case .orphans(let cids, let fix):
            return .orphans(try orphans(cids: cids, fix: fix))
        case .hit(let cid, let hits, let halfLife):
            return .value(try hit(cid: cid, hits: hits, halfLife: halfLife))
        case .checkWritable:
            try available {}
            return .done
        case .bury(let held, let worker, let token, let problem):
            guard let id = JobID(held.id) else {
                try available { lrem(keys.shard(held.shard).processing(worker), held.id) }
                return .done
            }
            _ = try fail(id, worker: worker, token: token, reason: FailureReason.undecodableJob.rawValue, message: "undecodable_job: \(problem)",
                         permanent: true, delay: .zero, maxAttempts: 1)
            return .done
        case .levelsSeen(let adding):
            return .names(try levelsSeen(adding: adding))
        case .agreeOnHalfLife(let halfLife):
            try agreeOnHalfLife(halfLife)
            return .done
        case .inquire(let token, let key, let cid, let filename, let ttl):
            try inquire(token: token, key: key, cid: cid, filename: filename, ttl: ttl)
            return .done
        case .inquiry(let token, let cid):
            return .names(try inquiry(token: token, cid: cid))
        }
    }

    // MARK: - Reading

    public func jobs(cids: [Int64]) throws -> [Int64: Job] {
        try available {}
        var jobs: [Int64: Job] = [:]
        for cid in cids { if let job = job(cid) { jobs[cid] = job } }
        return jobs
    }

    public func readJob(cid: Int64) throws -> Result<Job, Job.DecodingError>? {
        try available {}
        let fields = hash(keys.shard(of: cid).job(cid))
        return fields.isEmpty ? nil : Job.decode(fields)
    }

    public func states(cids: [Int64]) throws -> [Int64: JobState] {
        var states: [Int64: JobState] = [:]
        for cid in cids { if let state = try jobState(cid: cid) { states[cid] = JobState(status: state.status, gen: state.gen) } }
        return states
    }

    public func deadLetters() throws -> [DeadLetter] {
        try available {}
        return keys.shards.flatMap { shard in list(shard.dead).map { id in DeadLetter(id: id, shard: shard.index, job: JobID(id).flatMap { job($0.cid) }) } }
    }

    public func scheduled(_ schedule: Schedule, limit: Int) throws -> [Job] {
        try available {}
        return keys.shards.flatMap { shard in
            scheduled(schedule == .retry ? shard.retry : shard.deferred).sorted { ($0.value, $0.key) < ($1.value, $1.key) }.prefix(limit)
                .compactMap { entry in JobID(entry.key).flatMap { id in job(id.cid).flatMap { $0.id == entry.key ? $0 : nil } } }
        }
    }

    public func deadPage(_ request: PageRequest) throws -> Page<DeadLetter> {
        try available {}
        let ids = keys.shards.flatMap { shard in list(shard.dead).map { (id: $0, shard: shard.index) } }
        let shards = Dictionary(ids.map { ($0.id, $0.shard) }, uniquingKeysWith: { first, _ in first })
        return DeadLetterOrder.page(ids.map(\.id), after: request.cursor, limit: request.limit).map { id in
            DeadLetter(id: id, shard: shards[id] ?? 0, job: JobID(id).flatMap { job($0.cid) })
        }
    }

    public func scheduledPage(_ schedule: Schedule, _ request: PageRequest) throws -> Page<ScheduledJob> {
        try available {}
        let after = request.cursor.flatMap(ScheduleOrder.init(cursor:))
        var all: [(order: ScheduleOrder, shard: Int)] = []
        for shard in keys.shards {
            for (member, due) in scheduled(schedule == .retry ? shard.retry : shard.deferred) {
                all.append((ScheduleOrder(score: Double(due), member: member), shard.index))
            }
        }
        let following = all.filter { after == nil || after! < $0.order }.sorted { $0.order < $1.order }
        let page = Array(following.prefix(request.limit))
        return Page(items: page.map { entry in
                        ScheduledJob(id: entry.order.member, shard: entry.shard, due: Int64(entry.order.score),
                                     job: JobID(entry.order.member).flatMap { job($0.cid) }.flatMap { $0.id == entry.order.member ? $0 : nil })
                    },
                    total: all.count, next: following.count > request.limit ? page.last?.order.cursor : nil)
    }

    public func throughput(now: Int64, window: Int) throws -> Throughput {
        try available {}
        return Throughput(moved: ThroughputRing.window(keys.shards.map { hash($0.movedPerMinute) }, now: now, window: window),
                          committed: ThroughputRing.window(keys.shards.map { hash($0.committedPerMinute) }, now: now, window: window))
    }

    public func retryDue(_ id: JobID) throws -> Int64? {
        try available {}
        return scheduled(keys.shard(of: id.cid).retry)[id.description]
    }

    public func heartbeats() throws -> [Heartbeat] {
        try liveHeartbeats()
    }

    public func jobsByLevel(levels: [String], known: [String: String]) throws -> (JobsByLevel, [String: String]) {
        try available {}
        let workers = members(keys.control.workers).sorted()
        let now = WallClock.milliseconds() + clockOffsetMilliseconds
        var result = JobsByLevel()
        var targets: [String: String] = [:]
        for shard in keys.shards {
            for level in levels {
                let queued = list(shard.queue(level))
                result.counts[.init(.queued, level, shard.index), default: 0] += queued.count
                if let oldest = queued.last.flatMap(JobID.init) { result.oldest[.init(.queued, level, shard.index)] = max(0, now.saturatingSubtract(oldest.gen)) }
            }
            var ids: [(JobsByLevel.State, String)] = []
            ids += scheduled(shard.retry).keys.map { (.retry, $0) }
            ids += scheduled(shard.deferred).keys.map { (.deferred, $0) }
            ids += list(shard.dead).map { (.dead, $0) }
            ids += list(shard.done).map { (.done, $0) }
            for worker in workers {
                ids += list(shard.processing(worker)).map { (.processing, $0) }
                ids += list(shard.committing(worker)).map { (.committing, $0) }
            }
            for (state, id) in ids {
                let key = "\(shard.index)/\(id)"
                if let cached = known[key] {
                    targets[key] = cached
                    result.counts[.init(state, cached, shard.index), default: 0] += 1
                    continue
                }
                // As the Redis queue reads it: the target the hash holds now, counted even when the
                // hash is a newer generation's (a stale id), but kept for next time only while the
                // hash is this id's.
                var target: String?
                if let parsed = JobID(id) {
                    let fields = hash(shard.job(parsed.cid))
                    target = fields[JobField.target.rawValue]
                    if let target, fields[JobField.gen.rawValue] == String(parsed.gen) { targets[key] = target }
                }
                result.counts[.init(state, target ?? JobsByLevel.unknownLevel, shard.index), default: 0] += 1
            }
        }
        return (result, targets)
    }

    public func publishedPlacement() throws -> PlacementSnapshot? { try placementSnapshot() }

    public func movesInFlight(workers: [String]) throws -> [(worker: String, id: String, job: Job?)] {
        try available {}
        return workers.flatMap { worker in
            keys.shards.flatMap { shard in list(shard.processing(worker)).map { id in (worker, id, JobID(id).flatMap { job($0.cid) }) } }
        }
    }
}
