import Foundation
import Synchronization
import Logging
import RelocatorApp
import RelocatorCore
import ServiceLifecycle
import SQLStore

/// Carries out what the `Planner` proposes, every few seconds, in one place at a time: it runs in
/// every committer (which already holds the database and Redis), and a lock in Redis lets one of
/// them work while the others wait, so several committers are safe. Each round it publishes the
/// level table and policies for the workers, then queues the watermark demotions, displacements and
/// decay demotions as ordinary jobs (through the application's `submitPlacement`, so they follow the
/// submit rules and coalesce with counts). A
/// level whose last demotions are still moving is left alone until they are done: the disk reports
/// must show their effect before more goes.
public final class Rebalancer: Service, Sendable {
    public struct Settings: Sendable {
        public var id: String
        public var interval: Duration = .seconds(5)
        public var halfLife: Duration?

        public init(id: String, halfLife: Duration? = nil) {
            self.id = id
            self.halfLife = halfLife
        }
    }

    let settings: Settings
    let driver: any JobQueueDriver
    let openDatabase: @Sendable () throws -> any SQLDatabase
    let logger: Logger
    let stopping = StopSignal()
    /// The lock's holder: the committer's id and a token of this process, so that two committers
    /// given one `--id` still never both hold it.
    let token: String

    public init(settings: Settings, driver: any JobQueueDriver, openDatabase: @escaping @Sendable () throws -> any SQLDatabase,
                logger: Logger) {
        self.settings = settings
        self.driver = driver
        self.openDatabase = openDatabase
        self.logger = logger
        token = "\(settings.id)/\(UUID().uuidString)"
    }

    public func run() async throws {
        // A graceful shutdown and a cancelled group (another service of the process failed, e.g. a
        // committer refused at start) both end the rounds.
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await BlockingExecutor.onThread(named: "rebalancer") { self.runBlocking() }
            } onGracefulShutdown: {
                self.stopping.raise()
            }
        } onCancel: {
            self.stopping.raise()
        }
    }

    public func stop() { stopping.raise() }

    public func runBlocking() {
        let redis = driver.session()
        defer { redis.close() }
        var database: (any SQLDatabase)?
        defer { database?.close() }
        var inFlight: [Int64: Leaving] = [:]
        var lastProblem: String?
        repeat {
            let started = ContinuousClock.now
            do {
                if database == nil { database = try openDatabase() }
                inFlight = try round(redis, database!, inFlight: inFlight)
            } catch let error as SQLError where error.isTransient && error.code != .timedOut {
                ServiceMetrics.rebalanceRound("failed", duration: .now - started)
                database?.close()
                database = nil
                logger.debug("the rebalancer waits for the database: \(error)")
                continue
            } catch {
                ServiceMetrics.rebalanceRound("failed", duration: .now - started)
                // Said once per distinct problem: watermarks are not enforced meanwhile (a
                // statement past its time limit too: RELOCATOR_SQL_TIMEOUT_MS).
                let text = "\(error)"
                if text != lastProblem { logger.warning("rebalancing rounds fail: \(text)") }
                lastProblem = text
                continue
            }
            if lastProblem != nil { logger.notice("rebalancing rounds work again") }
            lastProblem = nil
        } while !stopping.wait(for: settings.interval)
        release(redis)
    }

    /// Gives the lock up on the way out, so that another committer's rebalancer takes over at its
    /// next round rather than when the lock lapses (30 s or more after the last round): the lock is
    /// renewed for one millisecond when this process holds it, and left alone when another does
    /// (a free lock is taken for that millisecond, which changes nothing).
    private func release(_ queue: any JobQueueSession) {
        do {
            _ = try queue.control(.holdRebalancer(holder: token, ttl: .milliseconds(1)))
        } catch {
            logger.debug("cannot give the rebalancing lock up; it lapses by itself: \(error)")
        }
    }

    /// When each level's last move out was seen landed (the newest heartbeat's time then, by Redis'
    /// clock): a disk report older than that may still count the files that left, and would make the
    /// next round shed them a second time.
    private let landed = Mutex<[String: Int64]>([:])

    /// A move out of a level the rebalancer queued: the level it leaves and its bytes.
    struct Leaving: Sendable, Equatable {
        var from: String
        var bytes: Int64
    }

    /// One round; returns the contents whose move out is still under way, with the level they leave.
    func round(_ queue: any JobQueueSession, _ database: any SQLDatabase, inFlight: [Int64: Leaving]) throws -> [Int64: Leaving] {
        // The lock outlasts a slow round (a busy database, a Redis timeout), whatever the interval.
        let started = ContinuousClock.now
        guard try queue.control(.holdRebalancer(holder: token, ttl: max(settings.interval * 3, .seconds(30)))) == .flag(true) else {
            ServiceMetrics.rebalanceRound("skipped", duration: .now - started)
            return inFlight
        }
        let levels = LevelStore(database: database)
        let snapshot = PlacementSnapshot(levels: try levels.levels(), policies: try levels.policies(), halfLife: settings.halfLife)
        _ = try queue.control(.publishPlacement(snapshot))
        var still: [Int64: Leaving] = [:]
        var left: Set<String> = []
        let states = try queue.states(cids: Array(inFlight.keys))
        for (cid, leaving) in inFlight {
            if let state = states[cid], state.status != .committed, state.status != .dead {
                still[cid] = leaving
            } else {
                left.insert(leaving.from)
            }
        }
        if !left.isEmpty {
            // Heartbeats are stamped by Redis' clock: a report newer than every heartbeat there now
            // was written after these moves landed, whatever this process's clock says.
            let newest = try queue.heartbeats().compactMap(\.beatAt).max() ?? Int64.min
            landed.withLock { for level in left { $0[level] = newest } }
        }
        var planner = Planner(queue: queue, database: database, halfLife: settings.halfLife)
        planner.reportsAfter = landed.withLock { $0 }
        // Moves out still under way count as freed: they are never shed a second time.
        for leaving in still.values { planner.leaving[leaving.from] = (planner.leaving[leaving.from] ?? 0).saturatingAdd(leaving.bytes) }
        let plan = try planner.plan(full: false)
        let store = ContentStore(database: database)
        let busyLevels = Set(still.values.map(\.from))
        for move in plan.moves where move.kind != .pending && !stopping.isRaised {
            if move.kind == .doesNotFit {
                // It displaces nobody: the dead letters say why, and a replay moves it once it fits.
                guard let state = try queue.states(cids: [move.cid])[move.cid], state.status == .deferred else { continue }
                if try queue.control(.doesNotFit(JobID(cid: move.cid, gen: state.gen), message: move.reason)) == .flag(true) {
                    logger.warning("a content that cannot fit goes to the dead letters",
                                   metadata: ["job.cid": "\(move.cid)", "job.to": "\(move.to)", "reason": "\(move.reason)"])
                }
                continue
            }
            // Demotions from a level wait until the last ones have landed.
            if move.kind != .decay && busyLevels.contains(move.from) { continue }
            let readAt = MonotonicClock.milliseconds()
            guard let content = try store.content(cid: move.cid) else { continue }
            // Enqueued by the application's rules, as every submission is.
            let wanted = PlacementMove(cid: move.cid, count: move.count, from: move.from, to: move.to, kind: move.kind.rawValue, reason: move.reason)
            guard let submitted = try App.submitPlacement(wanted, content: content, readAt: readAt, policy: snapshot.countPolicy, on: queue) else { continue }
            if [.created, .retargeted].contains(submitted.outcome) {
                ServiceMetrics.rebalanceQueued(kind: move.kind.rawValue, from: move.from, to: move.to)
                still[move.cid] = Leaving(from: move.from, bytes: move.bytes ?? 0)
                logger.info("rebalancing", metadata: ["job.cid": "\(move.cid)", "job.from": "\(move.from)", "job.to": "\(move.to)",
                                                      "job.kind": "\(move.kind.rawValue)", "reason": "\(move.reason)"])
            }
        }
        ServiceMetrics.rebalanceRound("done", duration: .now - started)
        return still
    }
}
