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
                   policy: $0.policy)
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
        case .publishing(let checksum, let bytes):
            return try recordProgress(delivery.id, worker: delivery.worker, token: delivery.token,
                                      [(.checksum, checksum.description), (.bytes, String(bytes)), (.stage, MoveStage.publishing.rawValue)])
        case .copied(let done, let total):
            return try recordProgress(delivery.id, worker: delivery.worker, token: delivery.token,
                                      [(.bytesDone, String(done)), (.bytesTotal, String(total))])
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
        if request.promoteDue { report.promoted = try promoteDue(limit: 500, horizons: request.horizons) }
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
        case .dead(let action, let cids):
            return .dead(try dead(action, cids: cids))
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
        case .levelChanged(let cid):
            try levelChanged(cid: cid)
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
        }
    }

    // MARK: - Reading

    public func jobs(cids: [Int64]) throws -> [Int64: Job] {
        try available {}
        var jobs: [Int64: Job] = [:]
        for cid in cids { if let job = job(cid) { jobs[cid] = job } }
        return jobs
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

    public func retryDue(_ id: JobID) throws -> Int64? {
        try available {}
        return scheduled(keys.shard(of: id.cid).retry)[id.description]
    }

    public func heartbeats() throws -> [Heartbeat] {
        try liveHeartbeats()
    }

    public func movesInFlight(workers: [String]) throws -> [(worker: String, id: String, job: Job?)] {
        try available {}
        return workers.flatMap { worker in
            keys.shards.flatMap { shard in list(shard.processing(worker)).map { id in (worker, id, JobID(id).flatMap { job($0.cid) }) } }
        }
    }
}
