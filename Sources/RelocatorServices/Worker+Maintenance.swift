import FileMover
import Foundation
import JobQueue
import Logging
import RelocatorCore

extension Worker {
    /// Every third of the heartbeat's time to live, until the slots have ended: the heartbeat
    /// (with what `status` shows of this worker), due retries promoted, dead workers reaped, stale
    /// temporary files removed, held ids no slot knows given back, paused levels refreshed. After
    /// a stop, cancels the moves in flight once the grace period is over.
    func maintenanceLoop(_ control: any QueueSession, until slotsDone: StopSignal) {
        let interval = Duration.milliseconds(max(100, settings.heartbeatTTL.milliseconds / 3))
        var unknownBefore: Set<String> = []
        var stopDeadline: ContinuousClock.Instant?
        var swept = ContinuousClock.now
        while !slotsDone.wait(for: interval) {
            checkLevels()
            if ContinuousClock.now - swept >= settings.sweepInterval {
                swept = .now
                sweepTemporaries()
            }
            if stopping.isRaised {
                let deadline = stopDeadline ?? .now + settings.gracePeriod
                stopDeadline = deadline
                if ContinuousClock.now >= deadline, cancel.raise() {
                    logger.warning("grace period over: cancelling the moves in flight; their jobs go back to the queue")
                }
            }
            do {
                try heartbeat(control)
                let paused = try control.paused()
                pausedLevels.withLock { $0 = paused }
                try refreshPlacement(control)
                if !stopping.isRaised {
                    let promoted = try control.promoteDue(limit: 500)
                    if promoted > 0 { logger.debug("promoted \(promoted) due jobs") }
                    let reaped = try control.reap(grace: settings.heartbeatTTL)
                    if reaped > 0 { logger.warning("gave back \(reaped) jobs of workers whose heartbeat stopped") }
                }
                unknownBefore = try giveBackUnknown(control, seenBefore: unknownBefore)
                redisHealth.succeeded()
            } catch {
                redisHealth.failed(error)
            }
        }
    }

    /// Reads the level table and policies the committer published.
    func refreshPlacement(_ control: any QueueSession) throws {
        guard let text = try control.placementSnapshot() else { return }
        do {
            let snapshot = try PlacementSnapshot(decoding: text)
            placement.withLock { $0 = snapshot }
            warnOfLevelsNotInTheTable(snapshot)
        } catch {
            logger.warning("cannot read the published level policies (\(error)); keeping the last ones")
        }
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

    /// The heartbeat, with what `status` and the dashboard show of this worker.
    func heartbeat(_ control: any QueueSession) throws {
        var info: [WorkerField: String] = [
            .kind: "worker", .host: ProcessInfo.processInfo.hostName, .pid: String(getpid()),
            .levels: settings.levels.joined(separator: ","), .concurrency: String(settings.concurrency),
            .held: String(holding.withLock { $0.count }), .startedAt: String(startedAt),
            .directories: settings.directories.names.map { "\($0)=\(settings.directories.directory(of: $0)!)" }.joined(separator: ","),
        ]
        info[.disks] = DiskReport.current(settings.directories).encoded
        let unavailable = unavailableLevels.withLock { $0 }
        if !unavailable.isEmpty { info[.unavailable] = unavailable.keys.sorted().joined(separator: ",") }
        let port = metricsPort.load(ordering: .relaxed)
        if port > 0 { info[.metricsPort] = String(port) }
        try control.heartbeat(worker: settings.id, info: info, ttl: settings.heartbeatTTL)
    }

    /// Ids in this worker's processing lists that no slot holds — a take or a claim whose reply was
    /// lost — go back to their queues once seen on two passes in a row (a slot that just took one
    /// has it in `holding` long before the next pass). Returns the ids seen this pass.
    func giveBackUnknown(_ control: any QueueSession, seenBefore: Set<String>) throws -> Set<String> {
        let inRedis = try control.held(worker: settings.id)
        let mine = holding.withLock { $0 }
        let unknown = inRedis.filter { !mine.contains(Self.key($0.shard, $0.id)) }
        let confirmed = unknown.filter { seenBefore.contains(Self.key($0.shard, $0.id)) }
        if !confirmed.isEmpty {
            // No slot ever acted on these: no fence.
            let given = try control.giveBack(worker: settings.id, ids: confirmed, fence: false)
            logger.warning("gave back \(given) of \(confirmed.count) jobs held in Redis but by no slot (a reply was lost)")
        }
        return Set(unknown.map { Self.key($0.shard, $0.id) }).subtracting(confirmed.map { Self.key($0.shard, $0.id) })
    }

    /// Takes a level out of service when its directory is no longer the one held since the start
    /// (unmounted, remounted, replaced) — one log line, a `status` line through the heartbeat and
    /// the `relocator_level_unavailable` gauge — and back in once it is the same again.
    func checkLevels() {
        guard let levels else { return }
        let now = levels.unavailable()
        let before = unavailableLevels.withLock { current in
            defer { current = now }
            return current
        }
        for (level, why) in now where before[level] == nil {
            logger.error("level '\(level)' is out of service for this worker: \(why); no job into or out of it is taken until it is back")
        }
        for level in before.keys where now[level] == nil {
            logger.notice("level '\(level)' is back in service: its directory is the one checked at start again")
        }
        for level in settings.levels { ServiceMetrics.levelUnavailable(level, now[level] != nil) }
    }

    /// Removes the temporary files left in this worker's levels' reserved directories by
    /// deliveries that stopped (a crash, a job dropped mid-copy). Each is removed only under its
    /// content's lock: a delivery of that content is then not under way on this host, and a
    /// temporary file is never used by another delivery than the one that made it.
    func sweepTemporaries() {
        guard let levels else { return }
        let roots = Array(levels.roots.values)
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

/// Each level directory's size and free space, from `statvfs`, as the heartbeat reports it:
/// `gold=used,free,size;silver=…` (bytes).
public struct DiskReport: Sendable, Equatable {
    public struct Usage: Sendable, Equatable {
        public var used: Int64
        public var free: Int64
        public var size: Int64
    }

    public var levels: [String: Usage]

    public init(levels: [String: Usage]) {
        self.levels = levels
    }

    public static func current(_ directories: LevelDirectories) -> DiskReport {
        var levels: [String: Usage] = [:]
        for level in directories.names {
            var info = statvfs()
            guard statvfs(directories.directory(of: level)!, &info) == 0 else { continue }
            let unit = Int64(info.f_frsize)
            levels[level] = Usage(used: (Int64(info.f_blocks) - Int64(info.f_bfree)) * unit, free: Int64(info.f_bavail) * unit,
                                  size: Int64(info.f_blocks) * unit)
        }
        return DiskReport(levels: levels)
    }

    public var encoded: String {
        levels.keys.sorted().map { "\($0)=\(levels[$0]!.used),\(levels[$0]!.free),\(levels[$0]!.size)" }.joined(separator: ";")
    }

    public init(decoding text: String) {
        var levels: [String: Usage] = [:]
        for item in text.split(separator: ";") {
            let parts = item.split(separator: "=", maxSplits: 1)
            let numbers = parts.last?.split(separator: ",").compactMap { Int64($0) } ?? []
            if parts.count == 2, numbers.count == 3 { levels[String(parts[0])] = Usage(used: numbers[0], free: numbers[1], size: numbers[2]) }
        }
        self.levels = levels
    }
}
