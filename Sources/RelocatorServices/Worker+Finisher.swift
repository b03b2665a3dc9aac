import FileMover
import Foundation
import RelocatorCore
import Synchronization

/// Moves whose source is removed and whose directory is still to be fsynced, waiting for their
/// level's finisher. A slot hands its move over and takes its next job; the finisher fsyncs each
/// directory once for all the removals made before it began (a group commit: on ext4 a directory
/// fsync waits for a journal commit, which costs milliseconds and covers any number of
/// removals), then acknowledges each move whose directory it synced. When the fsync fails, the
/// move is failed instead (retried: its next delivery finds the file published and syncs the
/// source's directory before it acknowledges).
///
/// Each source level has a lane and a finisher of its own: a disk whose fsync does not return (a
/// stalled device, a network filesystem whose server is gone) holds up only its own level's
/// acknowledgements. Once an fsync of the level has been under way longer than the level patience,
/// the level is out of service (`HeldLevels.syncsNotAnswering`) and its lane no longer holds up
/// the slots.
/// (Unchecked: `lanes` and `running` are only touched under `arrived`'s lock.)
final class FinishingMoves: @unchecked Sendable {
    struct Move: Sendable {
        /// The slot's `holding` entry, removed once the move is acknowledged or failed.
        var holdingKey: String
        var sync: PendingDirectorySync
        /// The move's ack, sent with the others of its round in one call once its directory is
        /// synced.
        var ack: Ack?
        /// Acknowledges the move (no error) or fails it (the fsync's error), in one try with the
        /// finisher's session: false when the queue could not be reached.
        var complete: @Sendable (any JobQueueing, MoveError?) -> Bool
        /// Set once its directory was synced (or could not be), for a move whose ack waits for
        /// the queue to come back.
        var synced = false
        var failure: MoveError?

        init(holdingKey: String, sync: PendingDirectorySync, ack: Ack? = nil,
             complete: @escaping @Sendable (any JobQueueing, MoveError?) -> Bool) {
            self.holdingKey = holdingKey
            self.sync = sync
            self.ack = ack
            self.complete = complete
        }

        var lane: String { sync.root.level }
    }

    /// A verified move's ack: the delivery, what the queue is told, and what is done with its answer.
    struct Ack: Sendable {
        var delivery: Delivery
        var outcome: Outcome
        var acknowledged: @Sendable (Completion) -> Void
    }

    /// One level's moves: those waiting for its finisher and those in its hands; its fsyncs under
    /// way are its root's (`LevelRoot.syncWaited`).
    private struct Lane {
        let root: LevelRoot
        var waiting: [Move] = []
        var inHand = 0

        var count: Int { waiting.count + inHand }

        func isStuck(patience: Duration, at now: ContinuousClock.Instant) -> Bool {
            root.syncWaited(at: now).map { $0 > patience } ?? false
        }
    }

    // (A wait on the monotonic clock: a step of the host's clock does not hold a finisher.)
    private let arrived = MonotonicCondition()
    private var lanes: [String: Lane] = [:]
    /// Finishers started and not yet ended.
    private var running = 0

    /// Hands `move` to its level's finisher. True when the level had none yet: the caller starts
    /// it (`finisherLoop(lane:)`), and calls `ended(lane:)` once it returns.
    func add(_ move: Move) -> Bool {
        arrived.withLock {
            let isNew = lanes[move.lane] == nil
            if isNew { running += 1 }
            lanes[move.lane, default: Lane(root: move.sync.root)].waiting.append(move)
            arrived.broadcast()
            return isNew
        }
    }

    /// Every move of `lane` handed over so far (waiting up to `timeout` for the first); they are
    /// in the finisher's hands until `roundEnded`.
    func take(_ lane: String, waitingUpTo timeout: Duration) -> [Move] {
        let deadline = MonotonicCondition.deadline(after: timeout)
        return arrived.withLock {
            while lanes[lane]?.waiting.isEmpty ?? true {
                guard arrived.wait(until: deadline) else { break }
            }
            let taken = lanes[lane]?.waiting ?? []
            lanes[lane]?.waiting.removeAll()
            lanes[lane]?.inHand += taken.count
            return taken
        }
    }

    /// The finisher of `lane` ended a round: `unreachable` (moves whose ack could not reach the
    /// queue) are first in line for its next one.
    func roundEnded(_ lane: String, putBack unreachable: [Move]) {
        arrived.withLock {
            lanes[lane]?.inHand = 0
            lanes[lane]?.waiting.insert(contentsOf: unreachable, at: 0)
            arrived.broadcast()
        }
    }

    /// The moves of `lane` not yet acknowledged or failed.
    func count(_ lane: String) -> Int {
        arrived.withLock { lanes[lane]?.count ?? 0 }
    }

    /// Whether a slot with a move of `lane` waits before it hands it over: the lane holds `limit`
    /// moves (the descriptors and jobs held stay bounded) and no fsync of its level has been
    /// under way for longer than `patience` (then the move is handed over, and the level is out
    /// of service, so that the slots go on with the other levels).
    func isFull(_ lane: String, limit: Int, patience: Duration, at now: ContinuousClock.Instant = .now) -> Bool {
        arrived.withLock {
            guard let state = lanes[lane], state.count >= limit else { return false }
            return !state.isStuck(patience: patience, at: now)
        }
    }

    /// Wakes the finishers waiting for moves (the slots have ended: those with none left return).
    func wake() {
        arrived.withLock { arrived.broadcast() }
    }

    /// The finisher of `lane` returned.
    func ended(lane: String) {
        arrived.withLock {
            running -= 1
            arrived.broadcast()
        }
    }

    /// Waits until every finisher has ended — or, once `cancel` is raised, until the levels of
    /// those left each have an fsync under way for longer than `patience` (the slots have ended:
    /// it is the finisher's). Returns the levels of those left, whose moves stay held (the worker
    /// gives them back as it stops: each next delivery finds its file published and syncs the
    /// source's directory before it acknowledges).
    func waitForFinishers(cancel: StopSignal, patience: Duration) -> [String] {
        while true {
            let stuck: [String]? = arrived.withLock {
                if running == 0 { return [] }
                _ = arrived.wait(until: MonotonicCondition.deadline(after: .milliseconds(200)))
                if running == 0 { return [] }
                let now = ContinuousClock.now
                let busy = lanes.filter { $0.value.count > 0 }
                guard cancel.isRaised, !busy.isEmpty, busy.values.allSatisfy({ $0.isStuck(patience: patience, at: now) }) else { return nil }
                return busy.keys.sorted()
            }
            if let stuck { return stuck }
        }
    }
}

extension Worker {
    /// Hands a move whose source is removed to its level's finisher, starting that finisher if
    /// the level has none yet. While the level's backlog is full the slot waits (its moves'
    /// descriptors and held jobs stay bounded), unless that finisher is stuck in an fsync.
    func handOver(_ move: FinishingMoves.Move) {
        let (limit, patience) = (max(4, 2 * settings.concurrency), Self.levelPatience(heartbeatTTL: settings.heartbeatTTL))
        while finishing.isFull(move.lane, limit: limit, patience: patience) && !cancel.isRaised { cancel.wait(for: .milliseconds(5)) }
        // Past a lane stuck in an fsync: its level goes out of service now, not at the next round
        // of the checks (no more of its jobs are taken meanwhile).
        if finishing.count(move.lane) >= limit { checkLevels() }
        guard finishing.add(move) else { return }
        BlockingExecutor.thread(named: "finish-\(move.lane)") {
            self.finisherLoop(lane: move.lane)
            self.finishing.ended(lane: move.lane)
        }
    }

    /// The finisher of one level: until the slots have ended and nothing of its level is left,
    /// syncs the directories of the moves handed over and acknowledges them. A move whose ack
    /// cannot reach the queue waits for the next round (the others go on); once moves are being
    /// cancelled it stays held, and the worker gives it back as it stops.
    func finisherLoop(lane: String) {
        let session = driver.session()
        defer { session.close() }
        var backoff = ReconnectBackoff()
        while true {
            // (`wake()` ends the wait once the slots have ended.)
            var batch = finishing.take(lane, waitingUpTo: .seconds(1))
            if batch.isEmpty {
                if slotsEnded.isRaised && finishing.count(lane) == 0 { return }
                continue
            }
            // Every move not yet synced removed its source before this fsync starts.
            let started = ContinuousClock.now
            var results: [String: MoveError?] = [:]
            for index in batch.indices where !batch[index].synced {
                let key = batch[index].sync.key
                if results[key] == nil {
                    do {
                        try batch[index].sync.sync()
                        results[key] = .some(nil)
                    } catch let error as MoveError {
                        results[key] = error
                    } catch {
                        results[key] = MoveError(.ioError, "cannot fsync \(batch[index].sync.display): \(error)")
                    }
                }
                batch[index].synced = true
                batch[index].failure = results[key] ?? nil
            }
            if !results.isEmpty { ServiceMetrics.phase(MovePhase.sourceDirectoryFsync.rawValue, .now - started) }
            var unreachable: [FinishingMoves.Move] = []
            // The moves whose directory is synced are acknowledged together (one round trip), each
            // on its own: one the queue refuses waits for the next round, the others are ended; a
            // failed fsync fails its moves one by one.
            let acks = batch.compactMap { move in move.failure == nil ? move.ack.map { (move: move, ack: $0) } : nil }
            var acknowledgedAny = false
            if !acks.isEmpty {
                let ended = session.complete(acks.map { ($0.ack.delivery, $0.ack.outcome) })
                var refused: [(id: JobID, error: any Error)] = []
                for (item, result) in zip(acks, ended) {
                    switch result {
                    case .success(let completion):
                        acknowledgedAny = true
                        item.ack.acknowledged(completion)
                        _ = holding.withLock { $0.remove(item.move.holdingKey) }
                    case .failure(let error):
                        refused.append((item.ack.delivery.id, error))
                        if cancel.isRaised {
                            logger.error("cannot acknowledge the move of \(item.ack.delivery.id) before stopping: \(error); its job stays held and goes back to its queue")
                            _ = holding.withLock { $0.remove(item.move.holdingKey) }
                        } else {
                            unreachable.append(item.move)
                        }
                    }
                }
                if let first = refused.first, !acknowledgedAny {
                    redisHealth.failed(first.error)
                } else {
                    redisHealth.succeeded()
                    // The queue answered, but not for these: each says why (and waits for the next round).
                    for (id, error) in refused { logger.warning("the queue refused the ack of job \(id): \(error)") }
                }
            }
            for move in batch where !(move.failure == nil && move.ack != nil) {
                if move.complete(session, move.failure) || cancel.isRaised {
                    _ = holding.withLock { $0.remove(move.holdingKey) }
                } else {
                    unreachable.append(move)
                }
            }
            finishing.roundEnded(lane, putBack: unreachable)
            if unreachable.isEmpty {
                backoff.succeeded()
            } else {
                // The queue answered for others of the round: no reason to wait before the next.
                if acknowledgedAny { backoff.succeeded() } else { backoff.failed(waitingOn: cancel) }
            }
        }
    }
}
