import FileMover
import Foundation
import JobQueue
import Logging
import RelocatorCore

extension Worker {
    /// One slot: take a job, move it, acknowledge or fail it, until the worker stops.
    ///
    /// Fairness without busy-waiting across shards and levels: a slot first looks at every shard
    /// without blocking (one round trip per shard, its levels in a rotating order); when all are
    /// empty it blocks on one (shard, level) queue for at most `idleWait`, a different one each
    /// time, so a job waits at most about `idleWait` for an idle slot whichever queue it is on.
    func slotLoop(_ slot: Int) {
        let session = driver.session()
        defer { session.close() }
        var rotation = slot
        var failures = 0
        let holder = "\(settings.id)/\(slot)"
        while !stopping.isRaised {
            do {
                let next = try nextJob(session, slot: holder, rotation: &rotation)
                redisHealth.succeeded()
                failures = 0
                guard let (taken, claim) = next else { continue }
                // A move handed to the finisher stays held until it is acknowledged.
                var handedOver = false
                defer {
                    if !handedOver { _ = holding.withLock { $0.remove(Self.key(taken.shard, taken.id)) } }
                    releasePermit(taken.level, holder, session)
                }
                if case .claimed = claim, settings.faults.loseReply > 0,
                   claims.add(1, ordering: .relaxed).newValue % settings.faults.loseReply == 0 {
                    logger.warning("fault injection: the reply to the claim of \(taken.id) is lost")
                    continue
                }
                if case .claimed(let fields) = claim { handedOver = process(taken, fields, session, permit: holder) }
            } catch {
                redisHealth.failed(error)
                failures += 1
                stopping.wait(for: RetryPolicy.reconnect.delay(afterFailures: failures))
            }
        }
    }

    /// The next id taken and claimed, or nil after an idle wait. With level policies, levels are
    /// taken in the placement's order (priority, then promotions before demotions), and a level
    /// with a `max-moves` limit only while this slot holds one of its permits.
    func nextJob(_ session: any QueueSession, slot holder: String, rotation: inout Int) throws -> (JobQueue.Taken, JobQueue.Claim)? {
        let paused = pausedLevels.withLock { $0 }
        let unavailable = unavailableLevels.withLock { $0 }
        let snapshot = placement.withLock { $0 }
        var levels = settings.levels.filter { !paused.contains($0) && unavailable[$0] == nil }
        rotation &+= 1
        if let snapshot, snapshot.hasPolicies {
            levels = snapshot.placement.takingOrder(levels)
        } else {
            levels = (0..<levels.count).map { levels[(rotation + $0) % levels.count] }
        }
        // Levels at their limit of moves in flight wait.
        var permitted: [String] = []
        var permits: [String] = []
        for level in levels {
            if let most = snapshot?.policies[level]?.maxMoves, most > 0 {
                guard try session.permit(level: level, holder: holder, most: most, ttl: permitTTL) else { continue }
                permits.append(level)
            }
            permitted.append(level)
        }
        func keep(_ taken: JobQueue.Taken?) {
            for level in permits where level != taken?.level { releasePermit(level, holder, session) }
        }
        if permitted.isEmpty {
            stopping.wait(for: settings.idleWait)
            return nil
        }
        let shards = session.shardCount
        for step in 0..<shards {
            let started = ContinuousClock.now
            if let taken = try session.take(worker: settings.id, shard: (rotation + step) % shards, levels: permitted) {
                ServiceMetrics.phase("take", .now - started)
                keep(taken)
                return (taken, try claim(taken, session))
            }
        }
        let pair = rotation % (shards * permitted.count)
        let taken = try session.waitForWork(worker: settings.id, shard: pair / permitted.count, level: permitted[pair % permitted.count],
                                            timeout: settings.idleWait)
        keep(taken)
        guard let taken else { return nil }
        return (taken, try claim(taken, session))
    }

    /// How long a permit for a move in flight lasts unless renewed (the move renews it as it copies).
    var permitTTL: Duration { max(.seconds(30), settings.heartbeatTTL * 3) }

    func releasePermit(_ level: String, _ holder: String, _ session: any QueueSession) {
        guard placement.withLock({ $0?.policies[level]?.maxMoves }) != nil else { return }
        do {
            try session.releasePermit(level: level, holder: holder)
        } catch {
            logger.debug("cannot release the permit of \(level) (it lapses by itself): \(error)")
        }
    }

    private func claim(_ taken: JobQueue.Taken, _ session: any QueueSession) throws -> JobQueue.Claim {
        let key = Self.key(taken.shard, taken.id)
        holding.withLock { _ = $0.insert(key) }
        do {
            let started = ContinuousClock.now
            defer { ServiceMetrics.phase("claim", .now - started) }
            return try session.claim(taken, worker: settings.id)
        } catch {
            // The id stays in the processing list: the maintenance loop gives it back.
            holding.withLock { _ = $0.remove(key) }
            throw error
        }
    }

    /// Moves one claimed job and reports the outcome to the queue. True when the move was handed to
    /// the finisher, which syncs the source's directory and then acknowledges it.
    @discardableResult
    func process(_ taken: JobQueue.Taken, _ fields: [String: String], _ session: any QueueSession, permit holder: String) -> Bool {
        let started = ContinuousClock.now
        var log = logger
        log[metadataKey: "job.id"] = "\(taken.id)"
        let job: Job
        switch Job.decode(fields) {
        case .success(let decoded): job = decoded
        case .failure(let problem):
            guard let id = JobID(taken.id) else { return false }
            log.error("a job that cannot be read goes to the dead-letter list: \(problem)")
            fail(id, token: fields[JobField.token.rawValue] ?? "", attempts: 0, reason: "undecodable_job", message: "undecodable_job: \(problem)",
                 permanent: true, nil, session, log)
            return false
        }
        log[metadataKey: "job.cid"] = "\(job.cid)"
        let id = JobID(cid: job.cid, gen: job.gen)
        // This delivery's token: every call it makes carries it, and one with an older token is refused.
        let token = job.deliveryToken
        let context = MoveContext(from: job.dbLevel, to: job.target, method: method(from: job.dbLevel, to: job.target), started: started)
        let filename: Filename
        do {
            filename = try Filename(job.filename)
        } catch {
            report(id, token: token, attempts: job.attempts, MoveError(.invalidFilename, "\(job.filename.debugDescription.prefix(200)): \(error)"),
                   context, session, log)
            return false
        }
        let directories = settings.directories
        for level in [job.dbLevel, job.target] where directories.directory(of: level) == nil {
            report(id, token: token, attempts: job.attempts, MoveError(.unknownLevel, "level '\(level)' has no directory on this worker "
                    + "(RELOCATOR_LEVELS names \(directories.names.joined(separator: ", ")))"), context, session, log)
            return false
        }
        if settings.faults.noopMove {
            acknowledge(id, token: token, checksum: "noop", bytes: 0, foundIn: nil, session, log) { _ in }
            return false
        }
        var expected: Checksum?
        if let recorded = job.checksum {
            do {
                expected = try Checksum(parsing: recorded)
            } catch {
                log.warning("the job's recorded checksum cannot be read (\(error)); a published copy is compared with the source instead")
            }
        }
        let request = MoveRequest(
            filename: filename, source: directories.place(of: job.dbLevel)!, target: directories.place(of: job.target)!,
            others: directories.names.filter { $0 != job.dbLevel && $0 != job.target }.compactMap(directories.place(of:)),
            cid: job.cid, gen: job.gen, expectedChecksum: expected)
        let snapshot = placement.withLock { $0 }
        var reserved: Int64?
        if let snapshot, context.method == "copy", !(job.stage?.mayHaveCopyAtTarget ?? false),
           let wait = admission(job, request, snapshot, holder: holder, session, reserved: &reserved, log) {
            deferJob(id, token: token, reason: wait, for: settings.deferRetry, locked: false, session, log)
            return false
        }
        defer {
            if reserved != nil {
                do {
                    try session.releaseRoom(level: job.target, holder: holder)
                } catch {
                    log.debug("cannot release the room reserved in \(job.target) (it lapses by itself): \(error)")
                }
            }
        }
        // A bandwidth of 0 is no limit (as rclone's --bwlimit 0, and as max-moves 0).
        let limit = context.method == "copy" ? snapshot?.policies[job.target]?.bandwidth.flatMap { $0 > 0 ? $0 : nil } : nil
        let result: MoveResult
        do {
            result = try mover.move(request, hooks: hooks(for: id, token: token, session, log, bandwidth: limit.map { (job.target, $0) },
                                                          permit: snapshot?.policies[job.target]?.maxMoves != nil ? (job.target, holder) : nil,
                                                          room: reserved.map { (job.target, holder, $0) }))
        } catch let error as MoveError where error.kind == .cancelled {
            log.info("move cancelled by the shutdown; the job goes back to its queue")
            return false
        } catch let error as MoveError where error.kind == .leaseLost {
            log.warning("the job is no longer this delivery's (given away or re-aimed meanwhile); the move stopped before publishing or removing anything")
            return false
        } catch let error as MoveError where error.kind == .contentLocked {
            // Another delivery of this content (a paused process that was reaped, say) holds its
            // lock: this one waits, counting no attempt, until the lock is free.
            deferJob(id, token: token, reason: error.message, for: settings.lockedRetry, locked: false, session, log)
            return false
        } catch let error as MoveError where error.kind == .levelUnavailable {
            // A level is no longer the directory checked at start: the job waits, counting no
            // attempt, and the maintenance loop takes the level out of service.
            checkLevels()
            deferJob(id, token: token, reason: error.message, for: settings.deferRetry, locked: true, session, log)
            return false
        } catch let error as MoveError {
            report(id, token: token, attempts: job.attempts, error, repeatedChecksum: job.reason == MoveError.Kind.checksumMismatch.rawValue,
                   context, session, log)
            return false
        } catch {
            // A hook could not reach Redis: nothing was published; the move is tried again.
            report(id, token: token, attempts: job.attempts, MoveError(.ioError, "cannot record the move's progress in Redis: \(error)"), context,
                   session, log)
            return false
        }
        if settings.faults.crashBeforeAck {
            log.critical("fault injection: crashing between the move and the ack")
            kill(getpid(), SIGKILL)
        }
        if let pending = result.pendingSync {
            // The source is removed; its directory's fsync and then the ack are the finisher's.
            let log = log
            // (A full backlog makes the slot wait: its moves' descriptors and held jobs stay bounded.)
            while finishing.count >= max(4, 2 * settings.concurrency) && !cancel.isRaised { cancel.wait(for: .milliseconds(5)) }
            finishing.add(FinishingMoves.Move(holdingKey: Self.key(taken.shard, taken.id), sync: pending) { session, failure in
                if let failure {
                    return self.report(id, token: token, attempts: job.attempts, failure, context, session, log, once: true)
                }
                return self.finish(id, token: token, job, result, context, session, log, once: true)
            })
            return true
        }
        finish(id, token: token, job, result, context, session, log)
        return false
    }

    /// The job waits `delay` as `deferred`, counting no attempt. `locked`: the delivery held the
    /// content's lock (the fence of an earlier delivery is gone).
    private func deferJob(_ id: JobID, token: String, reason: String, for delay: Duration, locked: Bool, _ session: any QueueSession,
                          _ log: Logger) {
        retrying("defer the job", log) {
            if try session.deferJob(id, worker: settings.id, token: token, reason: reason, for: delay, locked: locked) {
                log.notice("move deferred: \(reason)")
            }
        }
    }

    /// Acknowledges a move whose every step is durable, and counts it; with `once`, false when the
    /// queue could not be reached.
    @discardableResult
    private func finish(_ id: JobID, token: String, _ job: Job, _ result: MoveResult, _ context: MoveContext, _ session: any QueueSession,
                        _ log: Logger, once: Bool = false) -> Bool {
        let started = context.started
        return acknowledge(id, token: token, checksum: result.checksum.description, bytes: result.bytes,
                           foundIn: result.foundIn == job.dbLevel || result.foundIn == job.target ? nil : result.foundIn, session, log,
                           once: once) { mine in
            if mine {
                let from = result.foundIn == job.target ? job.dbLevel : result.foundIn
                ServiceMetrics.moved(from: from, to: job.target, method: result.method.rawValue, bytes: result.bytes, duration: .now - started)
                log.info("moved", metadata: ["job.from": "\(result.foundIn == job.target ? job.dbLevel : result.foundIn)",
                                             "job.to": "\(job.target)", "job.bytes": "\(result.bytes)", "job.method": "\(result.method.rawValue)"])
            } else {
                log.warning("moved, but the job was no longer this delivery's; the next delivery finds the file in place")
            }
        }
    }

    /// Why a copy into the job's target must wait (the target would rise above its high
    /// watermark), or nil; when it may go, `reserved` holds the bytes it will add, reserved in
    /// Redis against every other slot's admission (of every worker) until the move ends.
    private func admission(_ job: Job, _ request: MoveRequest, _ snapshot: PlacementSnapshot, holder: String, _ session: any QueueSession,
                           reserved: inout Int64?, _ log: Logger) -> String? {
        guard snapshot.policies[job.target]?.highWater != nil else { return nil }
        var size: Int64 = 0
        do {
            if case .regularFile(let bytes) = try LevelRoot(request.source).lookup(request.filename) { size = bytes }
        } catch {
            // The move itself reports what is wrong with the source.
            log.debug("cannot size the source before the move: \(error)")
            return nil
        }
        // An earlier delivery of this job that stopped mid-copy left its temporary file, its blocks
        // reserved: those bytes are in the disk's usage already (the move removes the file first).
        do {
            let target = try levels?.root(request.target) ?? LevelRoot(request.target)
            if let bytes = try target.temporarySize(cid: job.cid, gen: job.gen) { size = max(0, size - bytes) }
        } catch {
            log.debug("cannot look for an earlier delivery's temporary file: \(error)")
        }
        guard let report = DiskReport.current(LevelDirectories([(job.target, request.target.directory)])).levels[job.target] else { return nil }
        let usage = Placement.Usage(used: report.used, size: report.size)
        guard let room = snapshot.placement.room(in: job.target, usage: usage) else { return nil }
        let others: Int64
        do {
            let answer = try session.reserveRoom(level: job.target, holder: holder, bytes: size, room: room, ttl: permitTTL)
            if answer.granted {
                reserved = size
                return nil
            }
            others = answer.others
        } catch {
            // Not knowing what the others are copying there, this one waits rather than overfill.
            return "cannot reserve room in \(job.target): \(error)"
        }
        return snapshot.placement.admission(into: job.target, usage: usage, adding: size, inFlight: others)
            ?? "\(job.target) has room for \(room) bytes, and other copies into it hold \(others)"
    }

    /// What the mover tells the queue while it works; with a bandwidth limit on the target, every
    /// byte written is taken from the level's token bucket first; with a limit of moves in flight,
    /// the permit is renewed as the copy goes.
    private func hooks(for id: JobID, token: String, _ session: any QueueSession, _ log: Logger, bandwidth: (level: String, rate: Int64)? = nil,
                       permit: (level: String, holder: String)? = nil, room: (level: String, holder: String, bytes: Int64)? = nil) -> MoveHooks {
        let worker = settings.id
        let lost = { MoveError(.leaseLost, "job \(id) is no longer this delivery's") }
        var lastProgress = ContinuousClock.now
        let (minimum, interval) = (settings.progressMinimumBytes, settings.progressInterval)
        var permitRenewed = ContinuousClock.now
        let renewEvery = permitTTL / 3
        /// Renews the permit and the room reservation of a move that lasts.
        func renew() {
            guard permit != nil || room != nil, ContinuousClock.now - permitRenewed >= renewEvery else { return }
            permitRenewed = .now
            do {
                if let permit { _ = try session.permit(level: permit.level, holder: permit.holder, most: Int.max, ttl: self.permitTTL) }
                if let room {
                    _ = try session.reserveRoom(level: room.level, holder: room.holder, bytes: room.bytes, room: .max, ttl: self.permitTTL)
                }
            } catch {
                log.debug("cannot renew the permit or the room reserved in \(permit?.level ?? room?.level ?? ""): \(error)")
            }
        }
        return MoveHooks(
            willPublish: { checksum, bytes in
                guard try session.recordProgress(id, worker: worker, token: token,
                                                 [(.checksum, checksum.description), (.bytes, String(bytes)),
                                                  (.stage, MoveStage.publishing.rawValue)]) else { throw lost() }
            },
            // Once the source is removed the move goes to the finisher and its ack, which says
            // more than a stage would: no round trip of its own.
            didRemoveSource: {},
            progress: { done, total in
                renew()
                guard total >= minimum, ContinuousClock.now - lastProgress >= interval else { return }
                lastProgress = .now
                do {
                    _ = try session.recordProgress(id, worker: worker, token: token, [(.bytesDone, String(done)), (.bytesTotal, String(total))])
                } catch {
                    log.debug("cannot record the move's progress: \(error)")
                }
            },
            willWrite: { bytes in
                // Every byte is paid for before it is written, in pieces of at most a twentieth of
                // a second of the rate, so the level's rate holds from the first byte on.
                guard let bandwidth else { return }
                var owed = bytes
                while owed > 0 && !self.cancel.isRaised {
                    let piece = min(owed, max(1, bandwidth.rate / 20))
                    do {
                        let wait = try session.takeBandwidth(level: bandwidth.level, rate: bandwidth.rate, bytes: piece)
                        if wait == .zero { owed -= piece } else { self.cancel.wait(for: wait) }
                    } catch {
                        log.debug("cannot reach the bandwidth limit's bucket; going on: \(error)")
                        return
                    }
                    renew()
                }
            },
            shouldStop: { self.cancel.isRaised },
            phase: { ServiceMetrics.phase($0.rawValue, $1) },
            deferSourceDirectorySync: true)
    }

    /// Acknowledges a move, again and again while Redis does not answer (the move is done: it must
    /// not be lost); gives up only when moves are being cancelled — the job then stays held and
    /// goes back to its queue, and the next delivery finds the file in place.
    /// With `once`, one try: false when the queue could not be reached (the finisher tries the
    /// move again in its next round rather than hold every other move up).
    @discardableResult
    private func acknowledge(_ id: JobID, token: String, checksum: String, bytes: Int64, foundIn: String?, _ session: any QueueSession,
                             _ log: Logger, once: Bool = false, then: (Bool) -> Void) -> Bool {
        let started = ContinuousClock.now
        return retrying("acknowledge the move", log, once: once) {
            let mine = try session.ack(id, worker: settings.id, token: token, checksum: checksum, bytes: bytes, foundIn: foundIn)
            ServiceMetrics.phase("ack", .now - started)
            then(mine)
        }
    }

    /// Fails a move: a retry after the policy's delay, or the dead-letter list. A checksum mismatch
    /// seen twice in a row is permanent.
    @discardableResult
    func report(_ id: JobID, token: String, attempts: Int, _ error: MoveError, repeatedChecksum: Bool = false, _ context: MoveContext,
                _ session: any QueueSession, _ log: Logger, once: Bool = false) -> Bool {
        let permanent = error.isPermanent || (error.kind == .checksumMismatch && repeatedChecksum)
        return fail(id, token: token, attempts: attempts, reason: error.kind.rawValue, message: error.description, permanent: permanent, context, session, log,
                    once: once)
    }

    /// With `once`, one try: false when the queue could not be reached.
    @discardableResult
    func fail(_ id: JobID, token: String, attempts: Int, reason: String, message: String, permanent: Bool, _ context: MoveContext?,
              _ session: any QueueSession, _ log: Logger, once: Bool = false) -> Bool {
        let delay = settings.retry.delay(afterFailures: attempts + 1)
        return retrying("record the failure", log, once: once) {
            let outcome = try session.fail(id, worker: settings.id, token: token, reason: reason, message: message,
                                           permanent: permanent, delay: delay, maxAttempts: settings.retry.maxAttempts)
            if let context, outcome != .stale {
                ServiceMetrics.failed(from: context.from, to: context.to, outcome: outcome == .dead ? "dead" : "retried", reason: reason)
            }
            switch outcome {
            case .retrying: log.warning("move failed, retrying in \(delay): \(message)")
            case .dead: log.error("move failed for good; the job is in the dead-letter list: \(message)")
            case .reversed: log.warning("move failed (\(message)); a newer count sends the file back, the job now removes the copy it published")
            case .dropped, .stale: log.info("move failed (\(message)); the job had changed meanwhile (\(outcome.rawValue))")
            }
        }
    }

    /// Runs a queue call until it succeeds (Redis may be restarting); gives up only when moves are
    /// being cancelled.
    /// With `once`, gives up after one failure and returns false.
    @discardableResult
    private func retrying(_ what: String, _ log: Logger, once: Bool = false, _ body: () throws -> Void) -> Bool {
        var failures = 0
        while true {
            do {
                try body()
                redisHealth.succeeded()
                return true
            } catch {
                redisHealth.failed(error)
                if cancel.isRaised {
                    log.error("cannot \(what) before stopping: \(error); the job stays held and goes back to its queue")
                    return true
                }
                if once { return false }
                failures += 1
                cancel.wait(for: RetryPolicy.reconnect.delay(afterFailures: failures))
            }
        }
    }
}

/// What the metrics of a move need to know of it.
struct MoveContext {
    var from: String
    var to: String
    /// link (both levels on one filesystem) or copy.
    var method: String
    var started: ContinuousClock.Instant
}
