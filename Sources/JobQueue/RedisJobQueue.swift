import RedisClient
import RelocatorCore

/// The real queue: the seam (`JobQueueing`, `QueueReading`) over one Redis connection, each
/// operation one or a few of `JobQueue`'s scripts. What crosses the seam is typed; the text the
/// scripts and hashes hold (job hashes, heartbeats, the placement's JSON) stays in here.
public final class RedisJobQueue: JobQueueing, QueueReading {
    public let queue: JobQueue
    public let redis: RedisConnection

    public init(queue: JobQueue, redis: RedisConnection) {
        self.queue = queue
        self.redis = redis
    }

    public var shardCount: Int { queue.keys.shardCount }
    public func close() { redis.close() }

    // MARK: - Submitting

    public func submit(_ requests: [SubmitRequest]) throws -> [SubmitResult] {
        let replies = try redis.pipeline(calls: requests.map(queue.submitCall))
        return try replies.map { try queue.submitResult(from: $0, address: redis.url.address) }
    }

    // MARK: - Worker slots

    public func next(_ request: NextRequest) throws -> NextResult {
        let shards = shardCount
        guard !request.levels.isEmpty else { return .idle }
        // Every shard once without blocking (a stale or leased id is skipped), then one (shard,
        // level) queue for at most `wait`, a different one each time.
        for step in 0..<shards {
            let shard = (request.rotation + step) % shards
            while let taken = try queue.take(worker: request.worker, shard: shard, levels: request.levels, on: redis) {
                if let result = try claim(taken, worker: request.worker) { return result }
            }
        }
        let pair = request.rotation % (shards * request.levels.count)
        guard let taken = try queue.waitForWork(worker: request.worker, shard: pair / request.levels.count,
                                                level: request.levels[pair % request.levels.count], timeout: request.wait, on: redis)
        else { return .idle }
        return try claim(taken, worker: request.worker) ?? .idle
    }

    /// The claim of a taken id; nil when there is nothing to do with it (stale, leased).
    private func claim(_ taken: JobQueue.Taken, worker: String) throws -> NextResult? {
        switch try queue.claim(taken, worker: worker, on: redis) {
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
        let fields: [(JobField, String)]
        switch progress {
        case .publishing(let checksum, let bytes, let version):
            fields = [(.checksum, checksum.description), (.bytes, String(bytes)), (.stage, MoveStage.publishing.rawValue),
                      (.sourceVersion, version ?? "")]
        case .copied(let done, let total):
            fields = [(.bytesDone, String(done)), (.bytesTotal, String(total))]
        case .verified(let done, let total):
            fields = [(.verified, String(done)), (.bytesDone, String(done)), (.bytesTotal, String(total))]
        case .published:
            fields = [(.stage, MoveStage.published.rawValue)]
        case .copyWithdrawn:
            fields = [(.stage, MoveStage.copying.rawValue)]
        case .transferSecret(let digest):
            fields = [(.transferKey, TransferProtocol.transferKey(token: delivery.token, digest: digest))]
        case .pulling(let route):
            fields = [(.pulledFrom, route.stored)]
        case .pullStarted(let digest, let route):
            fields = [(.transferKey, TransferProtocol.transferKey(token: delivery.token, digest: digest)), (.pulledFrom, route.stored)]
        }
        return try queue.recordProgress(delivery.id, worker: delivery.worker, token: delivery.token, fields, on: redis)
    }

    public func complete(_ delivery: Delivery, _ outcome: Outcome) throws -> Completion {
        switch outcome {
        case .moved(let checksum, let bytes, _, let foundIn):
            return try queue.ack(delivery.id, worker: delivery.worker, token: delivery.token, checksum: checksum.description, bytes: bytes,
                                 foundIn: foundIn, on: redis) ? .done : .stale
        case .failed(let reason, let message, let permanent, let delay, let maxAttempts):
            switch try queue.fail(delivery.id, worker: delivery.worker, token: delivery.token, reason: reason.rawValue, message: message,
                                  permanent: permanent, delay: delay, maxAttempts: maxAttempts, on: redis) {
            case .retrying: return .retrying
            case .dead: return .dead
            case .dropped: return .dropped
            case .reversed: return .reversed
            case .stale: return .stale
            }
        case .deferred(let reason, let delay, let lockHeld):
            return try queue.deferJob(delivery.id, worker: delivery.worker, token: delivery.token, reason: reason, for: delay,
                                      locked: lockHeld, on: redis) ? .deferred : .stale
        }
    }

    /// Moves acknowledged in one pipeline, each on its own; anything else one at a time.
    public func complete(_ endings: [(delivery: Delivery, outcome: Outcome)]) -> [Result<Completion, any Error>] {
        var moves: [(id: JobID, worker: String, token: String, checksum: String, bytes: Int64, foundIn: String?)] = []
        for (delivery, outcome) in endings {
            guard case .moved(let checksum, let bytes, _, let foundIn) = outcome else {
                return endings.map { ending in Result { try complete(ending.delivery, ending.outcome) } }
            }
            moves.append((delivery.id, delivery.worker, delivery.token, checksum.description, bytes, foundIn))
        }
        do {
            return try queue.acks(moves, on: redis).map { acknowledged in
                acknowledged.map { $0 ? Completion.done : .stale }.mapError { $0 as any Error }
            }
        } catch {
            // The round trip failed: none is known to be ended.
            return Array(repeating: .failure(error), count: endings.count)
        }
    }

    /// A job that cannot be read goes to the dead letters (its hash says what it is).
    private func bury(_ held: HeldJob, worker: String, token: String, problem: String) throws {
        guard let id = JobID(held.id) else {
            try redis.send("LREM", queue.keys.shard(held.shard).processing(worker), 1, held.id)
            return
        }
        _ = try queue.fail(id, worker: worker, token: token, reason: FailureReason.undecodableJob.rawValue,
                           message: "undecodable_job: \(problem)", permanent: true, delay: .zero, maxAttempts: 1, on: redis)
    }

    // MARK: - Committers

    public func nextDone(committer: String, shard: Int, max: Int, wait: Duration, fresh: Bool) throws -> DoneBatch {
        var taken = try queue.takeDone(committer: committer, shard: shard, max: max, fresh: fresh, on: redis)
        if taken.isEmpty, wait > .zero, try queue.waitForDone(committer: committer, shard: shard, timeout: wait, on: redis) {
            taken = try queue.takeDone(committer: committer, shard: shard, max: max, fresh: false, on: redis)
        }
        return DoneBatch(shard: shard, ids: taken.map(\.id), jobs: taken.compactMap { item in
            guard let job = Job(hash: item.fields), job.status == .done, job.id == item.id else { return nil }
            return job
        })
    }

    public func commit(_ batch: DoneBatch, committer: String?, levels: [String], policy: CountPolicy, keep: Duration) throws -> CommitResult {
        let result = try queue.markCommitted(ids: batch.ids, shard: batch.shard, committer: committer, ttl: keep, levels: levels,
                                             policy: policy, on: redis)
        return CommitResult(followUps: result.followUps, unknownLevel: result.unknownLevel)
    }

    // MARK: - Maintenance

    public func maintain(_ request: MaintenanceRequest) throws -> MaintenanceReport {
        try queue.heartbeat(worker: request.beat.id, info: request.beat.fields, ttl: request.ttl, on: redis)
        var report = MaintenanceReport()
        if request.promoteDue { report.promoted = try queue.promoteDue(limit: 500, horizons: request.horizons, process: request.beat.id, on: redis) }
        if let grace = request.reapAfter { report.reaped = try queue.reap(grace: grace, on: redis) }
        report.paused = try queue.paused(on: redis)
        if let text = try queue.placementSnapshot(on: redis) {
            do {
                report.placement = try PlacementSnapshot(decoding: text)
            } catch {
                report.placementProblem = "\(error)"
            }
        }
        if request.listHeld { report.held = try queue.held(worker: request.beat.id, on: redis).map { HeldJob(shard: $0.shard, id: $0.id) } }
        return report
    }

    // MARK: - Admission

    public func admit(_ request: AdmissionRequest) throws -> AdmissionAnswer {
        switch request {
        case .permit(let level, let holder, let most, let ttl):
            return try queue.permit(level: level, holder: holder, most: most, ttl: ttl, on: redis) ? .granted : .refused
        case .releasePermit(let level, let holder):
            try queue.releasePermit(level: level, holder: holder, on: redis)
            return .granted
        case .room(let level, let holder, let bytes, let room, let ttl):
            let answer = try queue.reserveRoom(level: level, holder: holder, bytes: bytes, room: room, ttl: ttl, on: redis)
            return answer.granted ? .granted : .roomHeld(others: answer.others)
        case .releaseRoom(let level, let holder):
            try queue.releaseRoom(level: level, holder: holder, on: redis)
            return .granted
        case .bandwidth(let level, let rate, let bytes):
            let wait = try queue.takeBandwidth(level: level, rate: rate, bytes: bytes, on: redis)
            return wait == .zero ? .granted : .wait(wait)
        }
    }

    // MARK: - Control

    /// Leases, their release and changes of level go a thousand to a pipeline; a batch with any
    /// other action goes one action at a time.
    public func controls(_ actions: [ControlAction]) throws -> [ControlResult] {
        var results: [ControlResult] = []
        results.reserveCapacity(actions.count)
        for chunk in actions.chunks(of: 1000) {
            let calls = chunk.compactMap(pipelinedCall)
            guard calls.count == chunk.count else {
                results += try chunk.map { try control($0) }
                continue
            }
            let replies = try redis.pipeline(calls: calls.map(\.call))
            for (call, reply) in zip(calls, replies) {
                let checked = try reply.throwingServerError(address: redis.url.address, command: call.name)
                results.append(call.isLease ? .flag(checked.int == 1) : .done)
            }
        }
        return results
    }

    /// An action `controls` pipelines, as one call; nil for any other.
    private func pipelinedCall(_ action: ControlAction) -> (call: RedisCall, name: String, isLease: Bool)? {
        switch action {
        case .lease(let cid, let token, let ttl):
            return (queue.leaseCall(cid: cid, token: token, ttl: ttl), "EVALSHA lease.lua", true)
        case .unlease(let cid, let token):
            return (queue.unleaseCall(cid: cid, token: token), "EVALSHA unlease.lua", false)
        case .levelChanged(let cid, let filename, let holder):
            return (queue.levelChangedCall(cid: cid, renamed: Self.renamed(filename, holder)), "EVALSHA level-changed.lua", false)
        default:
            return nil
        }
    }

    /// A rename's new filename and its holder, when both are given.
    private static func renamed(_ filename: String?, _ holder: String?) -> (filename: String, holder: String)? {
        filename.flatMap { name in holder.map { (name, $0) } }
    }

    public func control(_ action: ControlAction) throws -> ControlResult {
        switch action {
        case .start:
            try queue.checkShardCount(on: redis)
            return .warnings(try queue.startupWarnings(on: redis))
        case .pause(let level):
            try queue.pause(level: level, on: redis)
            return .done
        case .resume(let level):
            try queue.resume(level: level, on: redis)
            return .done
        case .dead(let action, let cids, let who):
            return .dead(try queue.dead(action, cids: cids, by: who, on: redis))
        case .publishPlacement(let snapshot):
            try queue.publishPlacement(try snapshot.encoded(), on: redis)
            return .done
        case .holdRebalancer(let holder, let ttl):
            return .flag(try queue.holdRebalancer(holder, ttl: ttl, on: redis))
        case .doesNotFit(let id, let message):
            return .flag(try queue.giveUpDoesNotFit(id, message: message, on: redis))
        case .release(let worker, let ids, let fence):
            if let ids {
                return .count(try queue.giveBack(worker: worker, ids: ids.map { ($0.shard, $0.id) }, fence: fence, on: redis))
            }
            return .count(try queue.release(worker: worker, fence: fence, on: redis))
        case .unregister(let worker):
            try queue.unregister(worker: worker, on: redis)
            return .done
        case .lease(let cid, let token, let ttl):
            return .flag(try queue.lease(cid: cid, token: token, ttl: ttl, on: redis))
        case .unlease(let cid, let token):
            try queue.unlease(cid: cid, token: token, on: redis)
            return .done
        case .levelGeneration(let cid):
            return .count(try queue.levelChangeGeneration(cid: cid, on: redis).map { Int(clamping: $0) } ?? -1)
        case .levelChanged(let cid, let filename, let holder):
            try queue.levelChanged(cid: cid, renamed: Self.renamed(filename, holder), on: redis)
            return .done
        case .forgetContent(let cid, let levels):
            try queue.forgetContent(cid: cid, levels: levels, on: redis)
            return .done
        case .orphans(let cids, let fix):
            return .orphans(try queue.orphans(cids: cids, fix: fix, on: redis))
        case .hit(let cid, let hits, let halfLife):
            return .value(try queue.hit(cid: cid, hits: hits, halfLife: halfLife, on: redis))
        case .checkWritable:
            try queue.checkWritable(on: redis)
            return .done
        case .bury(let held, let worker, let token, let problem):
            try bury(held, worker: worker, token: token, problem: problem)
            return .done
        case .levelsSeen(let adding):
            return .names(try queue.levelsSeen(adding: adding, on: redis))
        case .agreeOnHalfLife(let halfLife):
            try queue.agreeOnHalfLife(halfLife, on: redis)
            return .done
        case .inquire(let token, let key, let cid, let filename, let ttl):
            try queue.inquire(token: token, key: key, cid: cid, filename: filename, ttl: ttl, on: redis)
            return .done
        case .inquiry(let token, let cid):
            return .names(try queue.inquiry(token: token, cid: cid, on: redis).map { [$0.key, $0.filename] } ?? [])
        }
    }

    // MARK: - Reading

    public func jobs(cids: [Int64]) throws -> [Int64: Job] {
        let replies = try redis.pipeline(cids.map { RedisCommand("HGETALL", queue.keys.shard(of: $0).job($0)) })
        var jobs: [Int64: Job] = [:]
        for (cid, reply) in zip(cids, replies) {
            if let job = Job(hash: try reply.throwingServerError(address: redis.url.address, command: "HGETALL").hash ?? [:]) { jobs[cid] = job }
        }
        return jobs
    }

    public func readJob(cid: Int64) throws -> Result<Job, Job.DecodingError>? {
        let fields = try queue.fields(cid: cid, on: redis)
        return fields.isEmpty ? nil : Job.decode(fields)
    }

    public func states(cids: [Int64]) throws -> [Int64: JobState] {
        var states: [Int64: JobState] = [:]
        for (cid, state) in try queue.jobStates(cids: cids, on: redis) {
            if let state { states[cid] = JobState(status: state.status, gen: state.gen) }
        }
        return states
    }

    public func jobCIDs() throws -> [Int64] { try queue.jobCIDs(on: redis) }

    public func stats(levels: [String]) throws -> QueueStats { try queue.stats(levels: levels, on: redis) }

    public func deadLetters() throws -> [DeadLetter] {
        try queue.deadJobs(on: redis).map { DeadLetter(id: $0.id, shard: $0.shard, job: $0.job) }
    }

    public func deadPage(_ request: PageRequest) throws -> Page<DeadLetter> {
        try queue.deadPage(request, on: redis).map { DeadLetter(id: $0.id, shard: $0.shard, job: $0.job) }
    }

    public func scheduledPage(_ schedule: Schedule, _ request: PageRequest) throws -> Page<ScheduledJob> {
        try queue.scheduledPage(schedule, request, on: redis)
    }

    public func throughput(now: Int64, window: Int) throws -> Throughput {
        try queue.throughput(now: now, window: window, on: redis)
    }

    public func residents(level: String, _ which: ResidentQuery) throws -> [Resident] {
        switch which {
        case .coldest(let limit): return try queue.coldest(level: level, limit: limit, on: redis).map { Resident(cid: $0.cid, score: $0.score) }
        case .hottest(let limit): return try queue.hottest(level: level, limit: limit, on: redis).map { Resident(cid: $0.cid, score: $0.score) }
        case .below(let score, let limit):
            return try queue.residents(level: level, below: score, limit: limit, on: redis).map { Resident(cid: $0.cid, score: $0.score) }
        case .cid(let cid):
            return try queue.residentScore(cid: cid, level: level, on: redis).map { [Resident(cid: cid, score: $0)] } ?? []
        }
    }

    public func scheduled(_ schedule: Schedule, limit: Int) throws -> [Job] {
        var found: [Job] = []
        for shard in queue.keys.shards {
            let set = schedule == .retry ? shard.retry : shard.deferred
            let ids = try redis.send("ZRANGE", set, 0, max(0, limit - 1)).array?.compactMap(\.string) ?? []
            found += try queue.withFields(ids, in: shard, on: redis).compactMap { item in
                guard let job = Job(hash: item.fields), job.id == item.id else { return nil }
                return job
            }
        }
        return found
    }

    public func retryDue(_ id: JobID) throws -> Int64? { try queue.retryDue(id, on: redis) }

    public func heartbeats() throws -> [Heartbeat] {
        try queue.liveWorkers(on: redis).map { Heartbeat(id: $0.key, fields: $0.value) }.sorted { $0.id < $1.id }
    }

    public func movesInFlight(workers: [String]) throws -> [(worker: String, id: String, job: Job?)] {
        try queue.heldMoves(workers: workers, on: redis).map { ($0.worker, $0.id, $0.job) }
    }

    public func jobsByLevel(levels: [String], known: [String: String]) throws -> (JobsByLevel, [String: String]) {
        try queue.jobsByLevel(levels: levels, known: known, on: redis)
    }

    /// A snapshot that does not decode (written by another version) is none.
    public func publishedPlacement() throws -> PlacementSnapshot? {
        try queue.placementSnapshot(on: redis).flatMap { try? PlacementSnapshot(decoding: $0) }
    }
}

/// Sessions of one connection each.
public struct RedisJobQueueDriver: JobQueueDriver {
    public let queue: JobQueue
    public let url: RedisURL

    public init(queue: JobQueue, url: RedisURL) {
        self.queue = queue
        self.url = url
    }

    public func session() -> any JobQueueSession { RedisJobQueue(queue: queue, redis: RedisConnection(url: url)) }
}
