import FileMover
import Foundation
import RelocatorCore
import Synchronization

/// Moves whose source is removed and whose directory is still to be fsynced, waiting for the
/// finisher. A slot hands its move over and takes its next job; the finisher fsyncs each
/// directory once for all the removals made before it began (a group commit: on ext4 a directory
/// fsync waits for a journal commit, which costs milliseconds and covers any number of
/// removals), then acknowledges each move whose directory it synced. When the fsync fails, the
/// move is failed instead (retried: its next delivery finds the file published and syncs the
/// source's directory before it acknowledges).
/// (Unchecked: `waiting` is only touched under `arrived`'s lock.)
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
    }

    /// A verified move's ack: the delivery, what the queue is told, and what is done with its answer.
    struct Ack: Sendable {
        var delivery: Delivery
        var outcome: Outcome
        var acknowledged: @Sendable (Completion) -> Void
    }

    // (A wait on the monotonic clock: a step of the host's clock does not hold the finisher.)
    private let arrived = MonotonicCondition()
    private var waiting: [Move] = []

    func add(_ move: Move) {
        arrived.withLock {
            waiting.append(move)
            arrived.broadcast()
        }
    }

    /// Moves whose ack could not reach the queue, first in line for the next round.
    func putBack(_ moves: [Move]) {
        arrived.withLock { waiting.insert(contentsOf: moves, at: 0) }
    }

    /// Every move handed over so far (waiting up to `timeout` for the first).
    func take(waitingUpTo timeout: Duration) -> [Move] {
        let deadline = MonotonicCondition.deadline(after: timeout)
        return arrived.withLock {
            while waiting.isEmpty {
                guard arrived.wait(until: deadline) else { break }
            }
            defer { waiting.removeAll() }
            return waiting
        }
    }

    var count: Int { arrived.withLock { waiting.count } }
}

extension Worker {
    /// The finisher: until the slots have ended and nothing is left, syncs the directories of the
    /// moves handed over and acknowledges them. A move whose ack cannot reach the queue waits for
    /// the next round (the others go on); once moves are being cancelled it stays held, and the
    /// worker gives it back as it stops.
    func finisherLoop(until slotsDone: StopSignal) {
        let session = driver.session()
        defer { session.close() }
        var backoff = ReconnectBackoff()
        while true {
            var batch = finishing.take(waitingUpTo: .milliseconds(50))
            if batch.isEmpty {
                if slotsDone.isRaised && finishing.count == 0 { return }
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
            if unreachable.isEmpty {
                backoff.succeeded()
            } else {
                finishing.putBack(unreachable)
                // The queue answered for others of the round: no reason to wait before the next.
                if acknowledgedAny { backoff.succeeded() } else { backoff.failed(waitingOn: cancel) }
            }
        }
    }
}
