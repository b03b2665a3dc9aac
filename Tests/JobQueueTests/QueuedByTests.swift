import Foundation
import JobQueue
import RelocatorCore
import Testing

/// `queued_by`: who queued a job and the rule that chose its target, written by the scripts when a
/// job is created or re-aimed, kept through a follow-up, a retry and a replay.
@Suite struct QueuedByTests {
    let count = QueuedBy(who: "POST /post_sentence", rule: "count 20000 falls in gold (10000–99999)")

    @Test func aCreatedJobSaysWhoQueuedItAndACoalescedCountLeavesItAsItIs() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let created = try q.queue.submit(cid: 1, count: 20000, filename: "f1", dbLevel: "bronze", target: "gold", queuedBy: count, on: q.redis)
        #expect(created.outcome == .created && created.job?.queuedBy == count)
        // Another count for the same target only updates the job: who queued it stays.
        let other = QueuedBy(who: "relocator enqueue", rule: "count 30000 falls in gold (10000–99999)")
        let updated = try q.queue.submit(cid: 1, count: 30000, filename: "f1", dbLevel: "bronze", target: "gold", queuedBy: other, on: q.redis)
        #expect(updated.outcome == .updated && updated.job?.queuedBy == count)
        // A count that re-aims it says so.
        let silver = QueuedBy(who: "POST /v1/contents/{cid}/count", rule: "count 2000 falls in silver (1000–9999)")
        let retargeted = try q.queue.submit(cid: 1, count: 2000, filename: "f1", dbLevel: "bronze", target: "silver", queuedBy: silver, on: q.redis)
        #expect(retargeted.outcome == .retargeted)
        #expect(try q.job(1)?.queuedBy == silver)
    }

    @Test func aFollowUpSaysItFollowsTheMoveAndWhoAskedForIt() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.queue.submit(cid: 2, count: 20000, filename: "f2", dbLevel: "bronze", target: "gold", queuedBy: count, on: q.redis)
        let job = try #require(try q.fetch(levels: ["gold"]))
        let during = QueuedBy(who: "relocator enqueue --hits", rule: "count 1500 falls in silver (1000–9999)")
        let followUp = try q.queue.submit(cid: 2, count: 1500, filename: "f2", dbLevel: "bronze", target: "silver", queuedBy: during, on: q.redis)
        #expect(followUp.outcome == .followUp && followUp.job?.queuedBy == count && followUp.job?.nextQueuedBy == during)
        try q.moveAndCommit(job)
        let next = try #require(try q.job(2))
        #expect(next.target == "silver" && next.nextQueuedBy == nil)
        // committed.lua spells the words QueuedBy.followUpPrefix does.
        #expect(next.queuedBy == QueuedBy(stored: QueuedBy.followUpPrefix(after: "gold") + during.stored))
        #expect(next.queuedBy?.who == "a follow-up after the move to gold of relocator enqueue --hits" && next.queuedBy?.rule == during.rule)
    }

    @Test func aReplayedDeadLetterSaysWhoReplayedItAndWhoQueuedItFirst() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.queue.submit(cid: 3, count: 20000, filename: "f3", dbLevel: "bronze", target: "gold", queuedBy: count, on: q.redis)
        let job = try #require(try q.fetch(levels: ["gold"]))
        #expect(try q.fail(job, reason: "source_missing", permanent: true) == .dead)
        let results = try q.queue.dead(.replay, cids: [3], by: "POST /v1/dead/replay", on: q.redis)
        #expect(results.map(\.outcome) == [.replayed])
        let replayed = try #require(try q.job(3))
        #expect(replayed.status == .queued)
        #expect(replayed.queuedBy == QueuedBy(who: "a replay (POST /v1/dead/replay) of a job queued by POST /post_sentence", rule: count.rule))
    }

    @Test func aJobQueuedWithoutOneHasNone() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let created = try q.submit(4)
        #expect(created.outcome == .created && created.job?.queuedBy == nil && created.job?.nextQueuedBy == nil)
    }
}
