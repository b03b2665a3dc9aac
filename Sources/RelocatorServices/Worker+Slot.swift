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
        while !stopping.isRaised {
            do {
                let next = try nextJob(session, rotation: &rotation)
                redisHealth.succeeded()
                failures = 0
                guard let (taken, claim) = next else { continue }
                defer { _ = holding.withLock { $0.remove(Self.key(taken.shard, taken.id)) } }
                if case .claimed = claim, settings.faults.loseReply > 0,
                   claims.add(1, ordering: .relaxed).newValue % settings.faults.loseReply == 0 {
                    logger.warning("fault injection: the reply to the claim of \(taken.id) is lost")
                    continue
                }
                if case .claimed(let fields) = claim { process(taken, fields, session) }
            } catch {
                redisHealth.failed(error)
                failures += 1
                stopping.wait(for: RetryPolicy.reconnect.delay(afterFailures: failures))
            }
        }
    }

    /// The next id taken and claimed, or nil after an idle wait.
    func nextJob(_ session: any QueueSession, rotation: inout Int) throws -> (JobQueue.Taken, JobQueue.Claim)? {
        let paused = pausedLevels.withLock { $0 }
        let levels = settings.levels.filter { !paused.contains($0) }
        if levels.isEmpty {
            stopping.wait(for: settings.idleWait)
            return nil
        }
        let shards = session.shardCount
        rotation &+= 1
        let order = (0..<levels.count).map { levels[(rotation + $0) % levels.count] }
        for step in 0..<shards {
            if let taken = try session.take(worker: settings.id, shard: (rotation + step) % shards, levels: order) {
                return (taken, try claim(taken, session))
            }
        }
        let pair = rotation % (shards * levels.count)
        guard let taken = try session.waitForWork(worker: settings.id, shard: pair / levels.count, level: levels[pair % levels.count],
                                                  timeout: settings.idleWait) else { return nil }
        return (taken, try claim(taken, session))
    }

    private func claim(_ taken: JobQueue.Taken, _ session: any QueueSession) throws -> JobQueue.Claim {
        let key = Self.key(taken.shard, taken.id)
        holding.withLock { _ = $0.insert(key) }
        do {
            return try session.claim(taken, worker: settings.id)
        } catch {
            // The id stays in the processing list: the maintenance loop gives it back.
            holding.withLock { _ = $0.remove(key) }
            throw error
        }
    }

    /// Moves one claimed job and reports the outcome to the queue.
    func process(_ taken: JobQueue.Taken, _ fields: [String: String], _ session: any QueueSession) {
        let started = ContinuousClock.now
        var log = logger
        log[metadataKey: "job.id"] = "\(taken.id)"
        let job: Job
        switch Job.decode(fields) {
        case .success(let decoded): job = decoded
        case .failure(let problem):
            guard let id = JobID(taken.id) else { return }
            log.error("a job that cannot be read goes to the dead-letter list: \(problem)")
            fail(id, attempts: 0, reason: "undecodable_job", message: "undecodable_job: \(problem)", permanent: true, nil, session, log)
            return
        }
        log[metadataKey: "job.cid"] = "\(job.cid)"
        let id = JobID(cid: job.cid, gen: job.gen)
        let context = MoveContext(from: job.dbLevel, to: job.target, method: method(from: job.dbLevel, to: job.target), started: started)
        let filename: Filename
        do {
            filename = try Filename(job.filename)
        } catch {
            return report(id, attempts: job.attempts, MoveError(.invalidFilename, "\(job.filename.debugDescription.prefix(200)): \(error)"),
                          context, session, log)
        }
        let directories = settings.directories
        for level in [job.dbLevel, job.target] where directories.directory(of: level) == nil {
            return report(id, attempts: job.attempts, MoveError(.unknownLevel, "level '\(level)' has no directory on this worker "
                    + "(RELOCATOR_LEVELS names \(directories.names.joined(separator: ", ")))"), context, session, log)
        }
        if settings.faults.noopMove {
            acknowledge(id, checksum: "noop", bytes: 0, foundIn: nil, session, log) { _ in }
            return
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
            cid: job.cid, gen: job.gen, expectedChecksum: expected, stalePart: job.part)
        let result: MoveResult
        do {
            result = try mover.move(request, hooks: hooks(for: id, session, log))
        } catch let error as MoveError where error.kind == .cancelled {
            log.info("move cancelled by the shutdown; the job goes back to its queue")
            return
        } catch let error as MoveError where error.kind == .leaseLost {
            log.warning("the job is no longer this worker's (given away or re-aimed meanwhile); the move stopped before publishing")
            return
        } catch let error as MoveError {
            return report(id, attempts: job.attempts, error, repeatedChecksum: job.reason == MoveError.Kind.checksumMismatch.rawValue,
                          context, session, log)
        } catch {
            // A hook could not reach Redis: nothing was published; the move is tried again.
            return report(id, attempts: job.attempts, MoveError(.ioError, "cannot record the move's progress in Redis: \(error)"), context,
                          session, log)
        }
        if settings.faults.crashBeforeAck {
            log.critical("fault injection: crashing between the move and the ack")
            kill(getpid(), SIGKILL)
        }
        acknowledge(id, checksum: result.checksum.description, bytes: result.bytes,
                    foundIn: result.foundIn == job.dbLevel || result.foundIn == job.target ? nil : result.foundIn, session, log) { mine in
            if mine {
                let from = result.foundIn == job.target ? job.dbLevel : result.foundIn
                ServiceMetrics.move(from: from, to: job.target, outcome: "moved",
                                    method: result.method == .copied ? "copy" : result.method == .linked ? "link" : context.method,
                                    bytes: result.bytes, duration: .now - started)
                log.info("moved", metadata: ["job.from": "\(result.foundIn == job.target ? job.dbLevel : result.foundIn)",
                                             "job.to": "\(job.target)", "job.bytes": "\(result.bytes)", "job.method": "\(result.method.rawValue)"])
            } else {
                log.warning("moved, but the job was no longer this worker's; the next delivery finds the file in place")
            }
        }
    }

    /// What the mover tells the queue while it works.
    private func hooks(for id: JobID, _ session: any QueueSession, _ log: Logger) -> MoveHooks {
        let worker = settings.id
        let lost = { MoveError(.leaseLost, "job \(id) is no longer this worker's") }
        var lastProgress = ContinuousClock.now
        let (minimum, interval) = (settings.progressMinimumBytes, settings.progressInterval)
        return MoveHooks(
            recordPart: { path in
                guard try session.recordProgress(id, worker: worker, [(.part, path), (.stage, MoveStage.copying.rawValue)]) else { throw lost() }
            },
            willPublish: { checksum, bytes in
                guard try session.recordProgress(id, worker: worker, [(.checksum, checksum.description), (.bytes, String(bytes)),
                                                                       (.stage, MoveStage.publishing.rawValue)]) else { throw lost() }
            },
            didRemoveSource: {
                do {
                    _ = try session.recordProgress(id, worker: worker, [(.stage, MoveStage.sourceRemoved.rawValue)])
                } catch {
                    log.debug("cannot record that the source was removed (the next delivery finds out): \(error)")
                }
            },
            progress: { done, total in
                guard total >= minimum, ContinuousClock.now - lastProgress >= interval else { return }
                lastProgress = .now
                do {
                    _ = try session.recordProgress(id, worker: worker, [(.bytesDone, String(done)), (.bytesTotal, String(total))])
                } catch {
                    log.debug("cannot record the move's progress: \(error)")
                }
            },
            shouldStop: { self.cancel.isRaised })
    }

    /// Acknowledges a move, again and again while Redis does not answer (the move is done: it must
    /// not be lost); gives up only when moves are being cancelled — the job then stays held and
    /// goes back to its queue, and the next delivery finds the file in place.
    private func acknowledge(_ id: JobID, checksum: String, bytes: Int64, foundIn: String?, _ session: any QueueSession,
                             _ log: Logger, then: (Bool) -> Void) {
        retrying("acknowledge the move", log) {
            then(try session.ack(id, worker: settings.id, checksum: checksum, bytes: bytes, foundIn: foundIn))
        }
    }

    /// Fails a move: a retry after the policy's delay, or the dead-letter list. A checksum mismatch
    /// seen twice in a row is permanent.
    func report(_ id: JobID, attempts: Int, _ error: MoveError, repeatedChecksum: Bool = false, _ context: MoveContext,
                _ session: any QueueSession, _ log: Logger) {
        let permanent = error.isPermanent || (error.kind == .checksumMismatch && repeatedChecksum)
        fail(id, attempts: attempts, reason: error.kind.rawValue, message: error.description, permanent: permanent, context, session, log)
    }

    func fail(_ id: JobID, attempts: Int, reason: String, message: String, permanent: Bool, _ context: MoveContext?,
              _ session: any QueueSession, _ log: Logger) {
        let delay = settings.retry.delay(afterFailures: attempts + 1)
        retrying("record the failure", log) {
            let outcome = try session.fail(id, worker: settings.id, reason: reason, message: message,
                                           permanent: permanent, delay: delay, maxAttempts: settings.retry.maxAttempts)
            if let context, outcome != .stale {
                ServiceMetrics.move(from: context.from, to: context.to, outcome: outcome == .dead ? "dead" : "retried", method: context.method,
                                    bytes: 0, duration: .now - context.started)
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
    private func retrying(_ what: String, _ log: Logger, _ body: () throws -> Void) {
        var failures = 0
        while true {
            do {
                try body()
                redisHealth.succeeded()
                return
            } catch {
                redisHealth.failed(error)
                if cancel.isRaised {
                    log.error("cannot \(what) before stopping: \(error); the job stays held and goes back to its queue")
                    return
                }
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
