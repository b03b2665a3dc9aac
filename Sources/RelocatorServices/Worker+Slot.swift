import FileMover
import Foundation
import Logging
import RelocatorCore

extension Worker {
    /// One slot: take the next delivery, move it, end it with the queue, until the worker stops.
    ///
    /// Fairness without busy-waiting across shards and levels: the queue's `next` looks at every
    /// shard without blocking, then blocks on one (shard, level) queue for at most `idleWait`, a
    /// different one each time (`rotation`), so a job waits at most about `idleWait` for an idle
    /// slot whichever queue it is on.
    func slotLoop(_ slot: Int) {
        let session = driver.session()
        defer { session.close() }
        var rotation = slot
        var backoff = ReconnectBackoff()
        let holder = "\(settings.id)/\(slot)"
        while !stopping.isRaised {
            do {
                let (next, permits) = try nextDelivery(session, slot: holder, rotation: &rotation)
                redisHealth.succeeded()
                backoff.succeeded()
                switch next {
                case .idle:
                    continue
                case .paused(let level):
                    // A level paused while this slot waited on its queue: the job went back; take
                    // nothing more from it until the maintenance loop reads it resumed.
                    pausedLevels.withLock { _ = $0.insert(level) }
                case .undecodable(let held, let token, let problem):
                    logger.error("a job that cannot be read goes to the dead-letter list: \(problem)")
                    retrying("send the unreadable job to the dead letters", logger) {
                        _ = try session.control(.bury(held, worker: settings.id, token: token, problem: problem))
                    }
                case .delivery(let delivery):
                    let key = Self.key(delivery.shard, delivery.id.description)
                    holding.withLock { _ = $0.insert(key) }
                    // A move handed to the finisher stays held until it is acknowledged.
                    var handedOver = false
                    defer {
                        if !handedOver { _ = holding.withLock { $0.remove(key) } }
                        for level in permits { releasePermit(level, holder, session) }
                    }
                    handedOver = process(delivery, session, permit: holder)
                }
            } catch {
                redisHealth.failed(error)
                backoff.failed(waitingOn: stopping)
            }
        }
    }

    /// The next delivery, or `.idle` after an idle wait, with the permits of levels with a
    /// `max-moves` limit this slot holds for it (to release once the move ends). With level
    /// policies, levels are taken in the placement's order (priority, then promotions before
    /// demotions), and a level with a limit only while this slot holds one of its permits.
    func nextDelivery(_ session: any JobQueueing, slot holder: String, rotation: inout Int) throws -> (NextResult, [String]) {
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
        // Levels at their limit of moves in flight wait (Admission.Permits decides; this performs).
        var machine = Admission.Permits(levels: levels, limits: (snapshot?.policies ?? [:]).compactMapValues(\.maxMoves))
        var action = machine.start()
        while case .askPermit(let level, let most) = action {
            let answer: AdmissionAnswer
            do {
                answer = try session.admit(.permit(level: level, holder: holder, most: most, ttl: permitTTL))
            } catch {
                for level in machine.held { releasePermit(level, holder, session) }
                throw error
            }
            action = machine.answered(answer)
        }
        guard case .take(let permitted) = action else {
            stopping.wait(for: settings.idleWait)
            return (.idle, [])
        }
        let started = ContinuousClock.now
        let next: NextResult
        do {
            next = try session.next(NextRequest(worker: settings.id, levels: permitted, rotation: rotation, wait: settings.idleWait))
        } catch {
            for level in machine.held { releasePermit(level, holder, session) }
            throw error
        }
        var deliveredFrom: String?
        if case .delivery(let delivery) = next {
            ServiceMetrics.phase("next", .now - started)
            deliveredFrom = delivery.level
        }
        let (kept, released) = machine.delivered(from: deliveredFrom)
        for level in released { releasePermit(level, holder, session) }
        return (next, kept)
    }

    /// How long a permit for a move in flight lasts unless renewed (the move renews it as it copies).
    var permitTTL: Duration { max(.seconds(30), settings.heartbeatTTL * 3) }

    func releasePermit(_ level: String, _ holder: String, _ session: any JobQueueing) {
        guard placement.withLock({ $0?.policies[level]?.maxMoves }) != nil else { return }
        do {
            _ = try session.admit(.releasePermit(level: level, holder: holder))
        } catch {
            logger.debug("cannot release the permit of \(level) (it lapses by itself): \(error)")
        }
    }

    /// Moves one delivery and ends it with the queue. True when the move was handed to the
    /// finisher, which syncs the source's directory and then acknowledges it.
    @discardableResult
    func process(_ delivery: Delivery, _ session: any JobQueueing, permit holder: String) -> Bool {
        let started = ContinuousClock.now
        let job = delivery.job
        var log = logger
        log[metadataKey: "job.id"] = "\(delivery.id)"
        log[metadataKey: "job.cid"] = "\(job.cid)"
        // A level taken out of service while this slot waited for a job (a blocking take began
        // before): the move waits, without an attempt, rather than block on a disk that does not answer.
        // It never took the content's lock: the fence of an earlier delivery stays (`lockHeld: false`).
        let unavailable = unavailableLevels.withLock { $0 }
        if let level = [job.dbLevel, job.target].first(where: { unavailable[$0] != nil }), let why = unavailable[level] {
            let context = MoveContext(from: job.dbLevel, to: job.target, method: .copied, started: started)
            end(delivery, .deferred(reason: "level '\(level)' is out of service for this worker: \(why)", delay: settings.deferRetry, lockHeld: false),
                context, session, log)
            return false
        }
        let context = MoveContext(from: job.dbLevel, to: job.target, method: method(from: job.dbLevel, to: job.target), started: started)
        if pullsFromAnotherHost(job) {
            let metered = (session as? any JobQueueSession).map { PullMetering($0, job: job) as any JobQueueing } ?? session
            pullAndEnd(delivery, metered, context, log, permit: holder)
            return false
        }
        let request: MoveRequest
        switch moveRequest(for: job) {
        case .success(let built): request = built
        case .failure(let error):
            report(delivery, error, context, session, log)
            return false
        }
        let snapshot = placement.withLock { $0 }
        var reserved: Int64?
        if let snapshot, context.method == .copied, !(job.stage?.mayHaveCopyAtTarget ?? false),
           let wait = admission(job, request, snapshot, holder: holder, session, reserved: &reserved, log) {
            end(delivery, .deferred(reason: wait, delay: settings.deferRetry, lockHeld: false), context, session, log)
            return false
        }
        defer {
            if reserved != nil {
                do {
                    _ = try session.admit(.releaseRoom(level: job.target, holder: holder))
                } catch {
                    log.debug("cannot release the room reserved in \(job.target) (it lapses by itself): \(error)")
                }
            }
        }
        // A bandwidth of 0 is no limit (as rclone's --bwlimit 0, and as max-moves 0).
        let limit = context.method == .copied ? snapshot?.policies[job.target]?.bandwidth.flatMap { $0 > 0 ? $0 : nil } : nil
        let result: MoveResult
        do {
            result = try mover.move(request, hooks: hooks(for: delivery, session, log, bandwidth: limit.map { (job.target, $0) },
                                                          permit: snapshot?.policies[job.target]?.maxMoves != nil ? (job.target, holder) : nil,
                                                          room: reserved.map { (job.target, holder, $0) }))
        } catch let error as MoveError {
            if error.kind == .levelUnavailable { checkLevels() }
            report(delivery, error, context, session, log)
            return false
        } catch {
            // A hook could not reach Redis: nothing was published; the move is tried again.
            report(delivery, MoveError(.ioError, "cannot record the move's progress in Redis: \(error)"), context, session, log)
            return false
        }
        if let pending = result.pendingSync {
            // The source is removed; its directory's fsync and then the ack are the finisher's.
            let log = log
            handOver(FinishingMoves.Move(holdingKey: Self.key(delivery.shard, delivery.id.description), sync: pending,
                                              ack: FinishingMoves.Ack(delivery: delivery, outcome: acknowledgement(of: delivery, result)) { ended in
                                                  self.acknowledged(delivery, result, context, ended, log)
                                              }) { session, failure in
                if let failure {
                    return self.report(delivery, failure, context, session, log, once: true)
                }
                return self.finish(delivery, result, context, session, log, once: true)
            })
            return true
        }
        finish(delivery, result, context, session, log)
        return false
    }

    /// The checksum a `noop-move` reports (benchmarks of the queue alone).

    /// The move of a job on this worker's directories, or why there is none.
    private func moveRequest(for job: Job) -> Result<MoveRequest, MoveError> {
        let filename: Filename
        do {
            filename = try Filename(job.filename)
        } catch {
            return .failure(MoveError(.invalidFilename, "\(job.filename.debugDescription.prefix(200)): \(error)"))
        }
        let directories = settings.directories
        for level in [job.dbLevel, job.target] where directories.directory(of: level) == nil {
            return .failure(MoveError(.unknownLevel, "level '\(level)' has no directory on this worker "
                                          + "(RELOCATOR_LEVELS names \(directories.names.joined(separator: ", ")))"))
        }
        var expected: Checksum?
        if let recorded = job.checksum {
            do {
                expected = try Checksum(parsing: recorded)
            } catch {
                logger.warning("job \(job.id): its recorded checksum cannot be read (\(error)); a published copy is compared with the source instead")
            }
        }
        return .success(MoveRequest(
            filename: filename, source: directories.place(of: job.dbLevel)!, target: directories.place(of: job.target)!,
            others: directories.names.filter { $0 != job.dbLevel && $0 != job.target }.compactMap(directories.place(of:)),
            cid: job.cid, gen: job.gen, expectedChecksum: expected))
    }

    /// Acknowledges a move whose every step is durable, and counts it; with `once`, false when the
    /// queue could not be reached.
    @discardableResult
    private func finish(_ delivery: Delivery, _ result: MoveResult, _ context: MoveContext, _ session: any JobQueueing, _ log: Logger,
                        once: Bool = false) -> Bool {
        let outcome = acknowledgement(of: delivery, result)
        return retrying("acknowledge the move", log, once: once) {
            acknowledged(delivery, result, context, try session.complete(delivery, outcome), log)
        }
    }

    /// What the queue is told of a verified move.
    func acknowledgement(of delivery: Delivery, _ result: MoveResult) -> Outcome {
        let job = delivery.job
        let foundIn = result.foundIn == job.dbLevel || result.foundIn == job.target ? nil : result.foundIn
        return .moved(result.checksum, bytes: result.bytes, method: result.method, foundIn: foundIn)
    }

    /// Counts and logs a move the queue answered.
    func acknowledged(_ delivery: Delivery, _ result: MoveResult, _ context: MoveContext, _ ended: Completion, _ log: Logger) {
        let job = delivery.job
        ServiceMetrics.phase("ack", .now - context.started)
        if ended == .done {
            let from = result.foundIn == job.target ? job.dbLevel : result.foundIn
            ServiceMetrics.moved(from: from, to: job.target, method: result.method.rawValue, bytes: result.bytes,
                                 duration: .now - context.started)
            log.info("moved", metadata: ["job.from": "\(from)", "job.to": "\(job.target)", "job.bytes": "\(result.bytes)",
                                         "job.method": "\(result.method.rawValue)"])
        } else {
            log.warning("moved, but the job was no longer this delivery's; the next delivery finds the file in place")
        }
    }

    /// Ends a delivery that did not move: the decision (`RetryDecision`) from the failure, the
    /// job's history and the retry policy. With `once`, one try: false when the queue could not be
    /// reached.
    @discardableResult
    func report(_ delivery: Delivery, _ error: MoveError, _ context: MoveContext, _ session: any JobQueueing, _ log: Logger,
                once: Bool = false) -> Bool {
        let job = delivery.job
        let decision = RetryDecision.decide(error.kind, attempts: job.attempts, previous: job.reason.flatMap(FailureReason.init(rawValue:)),
                                            policy: settings.retry, lockedRetry: settings.lockedRetry, unavailableRetry: settings.deferRetry,
                                            random: Double.random(in: 0...1))
        switch decision {
        case .drop:
            if error.kind == .leaseLost {
                log.warning("the job is no longer this delivery's (given away or re-aimed meanwhile); the move stopped before publishing or removing anything")
            } else {
                log.info("move cancelled by the shutdown; the job goes back to its queue")
            }
            return true
        case .wait(let delay, let lockHeld):
            // Another delivery of this content holds its lock (a paused process that was reaped, say),
            // or a level is out of service: the job waits, counting no attempt.
            return end(delivery, .deferred(reason: error.message, delay: delay, lockHeld: lockHeld), context, session, log, once: once)
        case .fail(let permanent, let delay):
            return end(delivery, .failed(error.kind, message: error.description, permanent: permanent, delay: delay,
                                         maxAttempts: settings.retry.maxAttempts), context, session, log, once: once)
        }
    }

    /// Ends a delivery with `outcome` (a failure or a deferral), logging what the queue did.
    @discardableResult
    private func end(_ delivery: Delivery, _ outcome: Outcome, _ context: MoveContext, _ session: any JobQueueing, _ log: Logger,
                     once: Bool = false) -> Bool {
        retrying("end the move", log, once: once) {
            let ended = try session.complete(delivery, outcome)
            switch outcome {
            case .deferred(let reason, _, _):
                if ended == .deferred { log.notice("move deferred: \(reason)") }
            case .failed(let reason, let message, _, let delay, _):
                if ended != .stale {
                    ServiceMetrics.failed(from: context.from, to: context.to, outcome: ended == .dead ? "dead" : "retried", reason: reason.rawValue)
                }
                switch ended {
                case .retrying: log.warning("move failed, retrying in \(delay): \(message)")
                case .dead: log.error("move failed for good; the job is in the dead-letter list: \(message)")
                case .reversed: log.warning("move failed (\(message)); a newer count sends the file back, the job now removes the copy it published")
                default: log.info("move failed (\(message)); the job had changed meanwhile (\(ended.rawValue))")
                }
            case .moved:
                break
            }
        }
    }

    /// Why a copy into the job's target must wait (the target would rise above its high
    /// watermark), or nil; when it may go, `reserved` holds the bytes it will add, reserved in
    /// Redis against every other slot's admission (of every worker) until the move ends.
    private func admission(_ job: Job, _ request: MoveRequest, _ snapshot: PlacementSnapshot, holder: String, _ session: any JobQueueing,
                           reserved: inout Int64?, _ log: Logger) -> String? {
        // Admission.Room decides; this performs its looks at the disks and its queue calls.
        var machine = Admission.Room(target: job.target, placement: snapshot.placement)
        var action = machine.start()
        while true {
            switch action {
            case .sizeSource:
                var size: Int64?
                do {
                    if case .regularFile(let bytes) = try (levels?.inService(request.source) ?? LevelRoot(request.source)).lookup(request.filename) {
                        size = bytes
                    } else {
                        size = 0
                    }
                } catch {
                    // The move itself reports what is wrong with the source.
                    log.debug("cannot size the source before the move: \(error)")
                }
                action = machine.sourceSized(size)
            case .sizeEarlierCopy:
                var earlier: Int64?
                do {
                    let target = try levels?.inService(request.target) ?? LevelRoot(request.target)
                    earlier = try target.temporarySize(cid: job.cid, gen: job.gen)
                } catch {
                    log.debug("cannot look for an earlier delivery's temporary file: \(error)")
                }
                action = machine.earlierCopySized(earlier)
            case .readDisk:
                let report = DiskReport.usage(of: request.target.directory)
                action = machine.diskRead(report.map(Placement.Usage.init))
            case .reserve(let bytes, let room):
                do {
                    action = machine.reserved(try session.admit(.room(level: job.target, holder: holder, bytes: bytes, room: room, ttl: permitTTL)))
                } catch {
                    action = machine.reserveFailed("\(error)")
                }
            case .go(let bytes):
                reserved = bytes
                return nil
            case .wait(let reason):
                return reason
            }
        }
    }

    /// What the mover tells the queue while it works; with a bandwidth limit on the target, every
    /// byte written is taken from the level's token bucket first; with a limit of moves in flight,
    /// the permit is renewed as the copy goes.
    private func hooks(for delivery: Delivery, _ session: any JobQueueing, _ log: Logger, bandwidth: (level: String, rate: Int64)? = nil,
                       permit: (level: String, holder: String)? = nil, room: (level: String, holder: String, bytes: Int64)? = nil) -> MoveHooks {
        let lost = { MoveError(.leaseLost, "job \(delivery.id) is no longer this delivery's") }
        var lastProgress = ContinuousClock.now
        let (minimum, interval) = (settings.progressMinimumBytes, settings.progressInterval)
        var permitRenewed = ContinuousClock.now
        let renewEvery = permitTTL / 3
        /// Renews the permit and the room reservation of a move that lasts.
        func renew() {
            guard permit != nil || room != nil, ContinuousClock.now - permitRenewed >= renewEvery else { return }
            permitRenewed = .now
            do {
                if let permit { _ = try session.admit(.permit(level: permit.level, holder: permit.holder, most: Int.max, ttl: self.permitTTL)) }
                if let room {
                    _ = try session.admit(.room(level: room.level, holder: room.holder, bytes: room.bytes, room: .max, ttl: self.permitTTL))
                }
            } catch {
                log.debug("cannot renew the permit or the room reserved in \(permit?.level ?? room?.level ?? ""): \(error)")
            }
        }
        return MoveHooks(
            willPublish: { checksum, bytes in
                guard try session.record(delivery, .publishing(checksum, bytes: bytes)) else { throw lost() }
            },
            // Once the source is removed the move goes to the finisher and its ack, which says
            // more than a stage would: no round trip of its own.
            didRemoveSource: {},
            progress: { done, total in
                renew()
                guard total >= minimum, ContinuousClock.now - lastProgress >= interval else { return }
                lastProgress = .now
                do {
                    _ = try session.record(delivery, .copied(done, of: total))
                } catch {
                    log.debug("cannot record the move's progress: \(error)")
                }
            },
            willWrite: { bytes in
                // Every byte is paid for before it is written, in pieces of at most a twentieth of
                // a second of the rate, so the level's rate holds from the first byte on.
                guard let bandwidth else { return }
                var payment = Admission.Bandwidth(bytes: bytes, rate: bandwidth.rate)
                var action = payment.start()
                while !self.cancel.isRaised {
                    switch action {
                    case .write: return
                    case .sleep(let wait):
                        self.cancel.wait(for: wait)
                        action = payment.slept()
                        renew()
                    case .pay(let piece):
                        do {
                            action = payment.answered(try session.admit(.bandwidth(level: bandwidth.level, rate: bandwidth.rate, bytes: piece)))
                        } catch {
                            log.debug("cannot reach the bandwidth limit's bucket; going on: \(error)")
                            action = payment.failed()
                        }
                        renew()
                    }
                }
            },
            shouldStop: { self.cancel.isRaised },
            phase: { ServiceMetrics.phase($0.rawValue, $1) },
            deferSourceDirectorySync: true)
    }

    /// Runs a queue call until it succeeds (Redis may be restarting); gives up only when moves are
    /// being cancelled. With `once`, gives up after one failure and returns false.
    @discardableResult
    func retrying(_ what: String, _ log: Logger, once: Bool = false, _ body: () throws -> Void) -> Bool {
        var backoff = ReconnectBackoff()
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
                backoff.failed(waitingOn: cancel)
            }
        }
    }
}

/// What the metrics of a move need to know of it.
struct MoveContext {
    var from: String
    var to: String
    /// linked (both levels on one filesystem) or copied.
    var method: MoveMethod
    var started: ContinuousClock.Instant
}
