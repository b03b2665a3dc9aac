import FileMover
import Foundation
import JobQueue
import Logging
import RelocatorCore

extension Worker {
    /// Every third of the heartbeat's time to live, until the slots have ended: the heartbeat
    /// (with what `status` shows of this worker), due retries promoted, dead workers reaped, held
    /// ids no slot knows given back, paused levels refreshed, kept transfer connections idle too
    /// long closed. After a stop, cancels the moves in flight once the grace period is over.
    /// Nothing here touches a level's filesystem (`LevelWatch` checks them, the sweeper sweeps
    /// them): a level that stops answering does not stop the heartbeat.
    func maintenanceLoop(_ control: any JobQueueing, until slotsDone: StopSignal) {
        let interval = Heartbeat.renewalInterval(ttl: settings.heartbeatTTL)
        var unknownBefore: Set<String> = []
        var stopDeadline: ContinuousClock.Instant?
        var stuckSaid = false
        while !slotsDone.wait(for: interval) {
            checkLevels()
            // Kept connections to transfer endpoints idle too long, also when no pull asks anything.
            TransferConnections.shared.sweep()
            if stopping.isRaised {
                let deadline = stopDeadline ?? .now + settings.gracePeriod
                stopDeadline = deadline
                if ContinuousClock.now >= deadline, cancel.raise() {
                    logger.warning("grace period over: cancelling the moves in flight; each job goes back to the queue once its slot stops")
                }
                // A move inside a filesystem that does not answer cannot be called off: said once,
                // as it is (the heartbeat goes on, so that no other worker takes the job meanwhile).
                if !stuckSaid, ContinuousClock.now >= deadline + Self.levelPatience(heartbeatTTL: settings.heartbeatTTL) {
                    stuckSaid = true
                    let held = holding.withLock { $0.count }
                    let silent = unavailableLevels.withLock { $0 }.keys.sorted()
                    let waiting = silent.isEmpty ? "" : ": a slot waits on a level out of service (\(silent.joined(separator: ", ")))"
                    logger.error("\(held) move\(held == 1 ? " has" : "s have") not stopped since the grace period ended\(waiting); this worker keeps its heartbeat and its jobs until they stop, and gives them back then")
                }
            }
            do {
                let held = try maintain(control, promote: !stopping.isRaised)
                unknownBefore = try giveBackUnknown(control, held: held, seenBefore: unknownBefore)
                redisHealth.succeeded()
            } catch {
                redisHealth.failed(error)
            }
        }
    }

    /// One round with the queue: the heartbeat (with what `status` and the dashboard show of this
    /// worker), due retries promoted and dead workers reaped (`promote`), the paused levels and the
    /// placement read. Returns the ids this worker holds in Redis.
    @discardableResult
    func maintain(_ control: any JobQueueing, promote: Bool) throws -> [HeldJob] {
        let unavailable = unavailableLevels.withLock { $0 }
        let port = metricsPort.load(ordering: .relaxed)
        let beat = Heartbeat(id: settings.id, kind: .worker, host: ProcessInfo.processInfo.hostName, pid: Int(getpid()), levels: settings.levels,
                             concurrency: settings.concurrency, held: holding.withLock { $0.count }, startedAt: startedAt,
                             disks: levelWatch?.disks ?? DiskReport.current(settings.directories),
                             directories: Dictionary(uniqueKeysWithValues: settings.directories.names.map { ($0, settings.directories.directory(of: $0)!) }),
                             unavailable: unavailable.keys.sorted(), metricsPort: port > 0 ? port : nil,
                             transfer: transferAdvertised.withLock { $0 }?.description, transferTLS: settings.transferServesTLS)
        let report = try control.maintain(MaintenanceRequest(beat: beat, ttl: settings.heartbeatTTL, promoteDue: promote,
                                                             reapAfter: promote ? settings.heartbeatTTL : nil, listHeld: true,
                                                             horizons: horizons(placement.withLock { $0 })))
        pausedLevels.withLock { $0 = report.paused }
        if let snapshot = report.placement {
            placement.withLock { $0 = snapshot }
            warnOfLevelsNotInTheTable(snapshot)
        }
        if let problem = report.placementProblem {
            logger.warning("cannot read the published level policies (\(problem)); keeping the last ones")
        }
        if report.promoted > 0 { logger.debug("promoted \(report.promoted) due jobs") }
        if report.reaped > 0 { logger.warning("gave back \(report.reaped) jobs of workers whose heartbeat stopped") }
        return report.held
    }

    /// The longest a retry waits (the backoff's cap) and a deferral (this worker's delays, a held
    /// content's recheck, the longest residency window of the published policies; unknown before
    /// they are read). A wait beyond its horizon is taken for a step of Redis' clock, and is due.
    func horizons(_ snapshot: PlacementSnapshot?) -> ScheduleHorizons {
        let deferral = snapshot.map { snapshot in
            snapshot.countPolicy.residencies.values.reduce(max(settings.deferRetry, settings.lockedRetry, HeldContent.recheck), max)
        }
        return ScheduleHorizons(retry: settings.retry.cap, deferral: deferral)
    }

    /// Once per level: a level this worker serves that the level table (as the committer last
    /// published it) does not have. No count sends a job there; its files stay where they are.
    func warnOfLevelsNotInTheTable(_ snapshot: PlacementSnapshot) {
        let table = snapshot.levels.map(\.name)
        for level in settings.levels where !table.contains(level) && warnedLevels.withLock({ $0.insert(level).inserted }) {
            logger.warning("""
                this worker serves level '\(level)', which the level table does not have (it has \(table.joined(separator: ", "))): \
                no count sends a job there; add it with `relocator levels set \(level) --min N --max N`, or leave it out of --levels
                """)
        }
    }

    /// Ids in this worker's processing lists that no slot holds — a take or a claim whose reply was
    /// lost — go back to their queues once seen on two passes in a row (a slot that just took one
    /// has it in `holding` long before the next pass). Returns the ids seen this pass.
    func giveBackUnknown(_ control: any JobQueueing, held inRedis: [HeldJob], seenBefore: Set<String>) throws -> Set<String> {
        let mine = holding.withLock { $0 }
        let unknown = inRedis.filter { !mine.contains(Self.key($0.shard, $0.id)) }
        let confirmed = unknown.filter { seenBefore.contains(Self.key($0.shard, $0.id)) }
        if !confirmed.isEmpty {
            // No slot acted on these: a slot inserts its job before it starts; fenced all the same.
            let given = try control.release(worker: settings.id, ids: confirmed, fence: true)
            logger.warning("gave back \(given) of \(confirmed.count) jobs held in Redis but by no slot (a reply was lost)")
        }
        return Set(unknown.map { Self.key($0.shard, $0.id) }).subtracting(confirmed.map { Self.key($0.shard, $0.id) })
    }

    /// Takes a level out of service when its directory is no longer the one held since the start
    /// (unmounted, remounted, replaced) or does not answer (`LevelWatch`) — one log line, a
    /// `status` line through the heartbeat and the `relocator_level_unavailable` gauge — and back
    /// in once it is the same again.
    func checkLevels() {
        guard let levelWatch else { return }
        // A level whose fsync has waited past the patience (a slot's or a finisher's) does not
        // answer either, though its checks may (its writeback stalled, what is cached answers).
        let now = levelWatch.unavailable().merging(levels?.syncsNotAnswering(patience: levelWatch.patience) ?? [:]) { check, _ in check }
        levels?.markOutOfService(now)
        let before = unavailableLevels.withLock { current in
            defer { current = now }
            return current
        }
        for (level, why) in now where before[level] == nil {
            logger.error("level '\(level)' is out of service for this worker: \(why); no job into or out of it is taken until it is back")
        }
        for level in before.keys where now[level] == nil {
            logger.notice("level '\(level)' is back in service: its directory is in place again, with its \(ReservedDirectory.name)/")
        }
        for level in settings.levels { ServiceMetrics.levelUnavailable(level, now[level] != nil) }
    }

    /// Removes the temporary files left in this worker's levels' reserved directories by
    /// deliveries that stopped (a crash, a job dropped mid-copy). Each is removed only under its
    /// content's lock: a delivery of that content is then not under way on this host, and a
    /// temporary file is never used by another delivery than the one that made it.
    func sweepTemporaries() {
        guard let levels else { return }
        // A withdrawn level (a bare mountpoint) has no lock file, and no delivery can hold one there.
        let roots = levels.roots.values.filter { $0.withdrawn == nil }
        let unavailable = unavailableLevels.withLock { $0 }
        for root in roots where unavailable[root.level] == nil {
            do {
                for (part, _) in try root.temporaryFiles() {
                    guard let lock = try ContentLock.tryLock(cid: part.cid, in: roots) else { continue }
                    defer { lock.release() }
                    if try root.removeTemporary(part, holding: lock) {
                        logger.info("removed the temporary file of a delivery that stopped: \(root.directory)/\(part.relativePath)")
                    }
                }
            } catch {
                logger.warning("cannot sweep the temporary files of level '\(root.level)' yet: \(error)")
            }
        }
    }
}

