import Foundation
import Logging
import RelocatorCore
import Synchronization

/// The worker's queue with the faults of `RELOCATOR_FAULTS` that concern it: every `loseReply`th
/// delivery is kept from the worker as if the claim's reply had been lost (the job stays in the
/// worker's processing list, for its maintenance to give back), and with `crashBeforeAck` the
/// process is killed when it ends a verified move, before the queue hears of it.
public struct FaultyQueueDriver: JobQueueDriver {
    let inner: any JobQueueDriver
    let faults: WorkerFaults
    let logger: Logger
    let deliveries = Counter()

    final class Counter: Sendable {
        let value = Atomic(0)
    }

    public init(_ inner: any JobQueueDriver, faults: WorkerFaults, logger: Logger) {
        self.inner = inner
        self.faults = faults
        self.logger = logger
    }

    public func session() -> any JobQueueSession {
        FaultySession(inner: inner.session(), faults: faults, logger: logger, deliveries: deliveries)
    }
}

final class FaultySession: QueueDecorator {
    let inner: any JobQueueSession
    let faults: WorkerFaults
    let logger: Logger
    let deliveries: FaultyQueueDriver.Counter

    init(inner: any JobQueueSession, faults: WorkerFaults, logger: Logger, deliveries: FaultyQueueDriver.Counter) {
        self.inner = inner
        self.faults = faults
        self.logger = logger
        self.deliveries = deliveries
    }

    func next(_ request: NextRequest) throws -> NextResult {
        let result = try inner.next(request)
        if case .delivery(let delivery) = result, faults.loseReply > 0,
           deliveries.value.add(1, ordering: .relaxed).newValue % faults.loseReply == 0 {
            logger.warning("fault injection: the reply to the claim of \(delivery.id) is lost")
            return .idle
        }
        return result
    }

    func complete(_ delivery: Delivery, _ outcome: Outcome) throws -> Completion {
        if faults.crashBeforeAck, case .moved = outcome {
            logger.critical("fault injection: crashing between the move and the ack")
            raise(SIGKILL)
        }
        return try inner.complete(delivery, outcome)
    }

    func record(_ delivery: Delivery, _ progress: MoveProgress) throws -> Bool {
        if faults.crashBeforePublished, progress == .published {
            logger.critical("fault injection: crashing between the publication of \(delivery.id) and its record")
            raise(SIGKILL)
        }
        let recorded = try inner.record(delivery, progress)
        if recorded, case .verified(let done, _) = progress, faults.crashAfterChunk?.takesTheLast() == true {
            logger.critical("fault injection: crashing after \(done) bytes of \(delivery.id) were recorded as verified")
            raise(SIGKILL)
        }
        return recorded
    }
}
