import FileMover
import Foundation
import RelocatorCore
import Synchronization

/// Moves whose source is removed and whose directory is still to be fsynced, waiting for the
/// finisher. A slot hands its move over and takes its next job; the finisher fsyncs each
/// directory once for all the removals made before it began (a group commit: on ext4 a directory
/// fsync waits for a journal commit, which costs milliseconds and covers any number of
/// removals), then acknowledges each move — never before its directory is synced.
final class FinishingMoves: Sendable {
    struct Move: Sendable {
        /// The slot's `holding` entry, removed once the move is acknowledged or failed.
        var holdingKey: String
        var sync: PendingDirectorySync
        /// Acknowledges the move (nil) or reports the fsync's failure, with the finisher's session.
        var complete: @Sendable (any QueueSession, MoveError?) -> Void
    }

    private let waiting = Mutex<[Move]>([])
    private let arrived = DispatchSemaphore(value: 0)

    func add(_ move: Move) {
        waiting.withLock { $0.append(move) }
        arrived.signal()
    }

    /// Every move handed over so far (waiting up to `timeout` for the first).
    func take(waitingUpTo timeout: Duration) -> [Move] {
        _ = arrived.wait(timeout: .now() + .milliseconds(Int(timeout.milliseconds)))
        return waiting.withLock { moves in
            defer { moves.removeAll() }
            return moves
        }
    }

    var isEmpty: Bool { waiting.withLock { $0.isEmpty } }
}

extension Worker {
    /// The finisher: until the slots have ended and nothing is left, syncs the directories of the
    /// moves handed over and acknowledges them.
    func finisherLoop(until slotsDone: StopSignal) {
        let session = driver.session()
        defer { session.close() }
        while true {
            let batch = finishing.take(waitingUpTo: .milliseconds(50))
            if batch.isEmpty {
                if slotsDone.isRaised && finishing.isEmpty { return }
                continue
            }
            // Every move in the batch removed its source before this fsync starts.
            let started = ContinuousClock.now
            var failures: [String: MoveError] = [:]
            var synced: Set<String> = []
            for move in batch where !synced.contains(move.sync.key) {
                synced.insert(move.sync.key)
                do {
                    try move.sync.sync()
                } catch let error as MoveError {
                    failures[move.sync.key] = error
                } catch {
                    failures[move.sync.key] = MoveError(.ioError, "cannot fsync \(move.sync.display): \(error)")
                }
            }
            ServiceMetrics.phase(MovePhase.sourceDirectoryFsync.rawValue, .now - started)
            for move in batch {
                move.complete(session, failures[move.sync.key])
                _ = holding.withLock { $0.remove(move.holdingKey) }
            }
        }
    }
}
