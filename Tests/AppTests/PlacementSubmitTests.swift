import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Testing

/// The rebalancer's moves enqueued by the application's submit rules, over the memory queue.
@Suite struct PlacementSubmitTests {
    let queue = MemoryQueue()
    let demotion = PlacementMove(cid: 7, count: 12, from: "gold", to: "silver", kind: "watermark", reason: "gold is above its high watermark")

    @Test func aPlacementMoveIsQueuedSayingWhoQueuedItAndWhy() throws {
        let content = Content(cid: 7, filename: "a/b.mp4", level: "gold")
        let result = try #require(try App.submitPlacement(demotion, content: content, readAt: MonotonicClock.milliseconds(), policy: .none, on: queue))
        #expect(result.outcome == .created)
        let job = try #require(queue.job(7))
        #expect(job.target == "silver" && job.dbLevel == "gold" && job.count == 12 && job.filename == "a/b.mp4")
        #expect(job.queuedBy == QueuedBy(who: Submitter.rebalancer(kind: "watermark").who, rule: "gold is above its high watermark"))
    }

    @Test func aContentThatLeftTheLevelThePlanReadIsNotQueued() throws {
        let content = Content(cid: 7, filename: "a/b.mp4", level: "bronze")
        guard case .failure(let refusal) = App.placementRequest(demotion, content: content, readAt: 5_000, policy: .none) else {
            Issue.record("a content on another level was accepted")
            return
        }
        #expect(refusal == .leftLevel(now: "bronze"))
        #expect(try App.submitPlacement(demotion, content: content, readAt: MonotonicClock.milliseconds(), policy: .none, on: queue) == nil)
        #expect(queue.job(7) == nil)
    }

    @Test func aContentWithAnUnsafeFilenameIsNotQueued() throws {
        let content = Content(cid: 7, filename: "../etc/passwd", level: "gold")
        guard case .failure(.unsafeFilename(let reason)) = App.placementRequest(demotion, content: content, readAt: 5_000, policy: .none) else {
            Issue.record("an unsafe filename was accepted")
            return
        }
        #expect(!reason.isEmpty)
        #expect(try App.submitPlacement(demotion, content: content, readAt: MonotonicClock.milliseconds(), policy: .none, on: queue) == nil)
        #expect(queue.job(7) == nil)
    }

    @Test func aPlacementMoveCoalescesWithACountAlreadyQueued() throws {
        let content = Content(cid: 7, filename: "a/b.mp4", level: "gold")
        let count = try queue.submit(SubmitRequest(cid: 7, count: 5, filename: "a/b.mp4", dbLevel: "gold", target: "bronze",
                                                   readAt: SubmitRequest.freshRead, policy: .none))
        #expect(count.outcome == .created)
        let again = try #require(try App.submitPlacement(demotion, content: content, readAt: MonotonicClock.milliseconds(), policy: .none, on: queue))
        #expect(again.outcome != .created)
        #expect(try queue.jobCIDs() == [7])
    }

    @Test func aCountOutOfBoundsIsClampedAndAMissingOneIsZero() throws {
        var move = demotion
        move.count = nil
        let content = Content(cid: 7, filename: "a.mp4", level: "gold")
        guard case .success(let request) = App.placementRequest(move, content: content, readAt: 5_000, policy: .none) else {
            Issue.record("refused")
            return
        }
        // The read goes with its age (older by the allowance for its time on the way).
        #expect(request.count == 0 && request.readAt == 5_000 - SubmitMachine.transitAllowance && request.sentAt == 5_000)
        move.count = 1e30
        guard case .success(let clamped) = App.placementRequest(move, content: content, readAt: 5_000, policy: .none) else {
            Issue.record("refused")
            return
        }
        #expect(clamped.count == CountBound.max)
    }

    @Test func aRowOfAnotherContentIsNeverTakenForTheMovesOwn() {
        let other = Content(cid: 8, filename: "a.mp4", level: "gold")
        guard case .failure(let refusal) = App.placementRequest(demotion, content: other, readAt: 5_000, policy: .none) else {
            Issue.record("another content's row was accepted")
            return
        }
        #expect(refusal == .leftLevel(now: "gold"))
    }

    @Test func aPromotionCarriesThePublishedPolicyAndItsKind() throws {
        let promotion = PlacementMove(cid: 7, count: 50_000, from: "silver", to: "gold", kind: "promotion", reason: "hot")
        let policy = CountPolicy(halfLife: .seconds(60), residencies: ["gold": .seconds(30)])
        guard case .success(let request) = App.placementRequest(promotion, content: Content(cid: 7, filename: "a.mp4", level: "silver"), readAt: 5_000,
                                                                policy: policy) else {
            Issue.record("refused")
            return
        }
        #expect(request.policy == policy && request.target == "gold" && request.count == 50_000)
        #expect(request.queuedBy?.who == "the rebalancer (promotion)" && request.queuedBy?.rule == "hot")
    }

    /// A content whose level or name changed after the rebalancer read its row (reconcile, an
    /// operator, a rename) is not queued from that read: the queue calls it stale, and the next
    /// round plans it again from the row as it is then.
    @Test func aContentChangedAfterTheReadIsCalledStaleAndNotQueued() throws {
        let content = Content(cid: 7, filename: "a/b.mp4", level: "gold")
        let readAt = MonotonicClock.milliseconds()
        _ = try queue.control(.levelChanged(cid: 7))
        let result = try #require(try App.submitPlacement(demotion, content: content, readAt: readAt, policy: .none, on: queue))
        #expect(result.outcome == .staleLevel)
        #expect(queue.job(7) == nil)
    }
}
