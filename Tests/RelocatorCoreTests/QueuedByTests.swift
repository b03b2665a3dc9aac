import RelocatorCore
import Testing

/// What a job says of who queued it, pure.
@Suite struct QueuedByRuleTests {
    let table = LevelTable(LevelRange.defaults)

    @Test func aCountSaysItsRangeTheRaisedMaxOrTheRuleThatHoldsIt() throws {
        let plain = Placement(table: table)
        let silver = try #require(plain.target(count: 5000, current: "bronze"))
        #expect(QueuedBy.count(5000, from: .postSentence, decision: silver, placement: plain)
            == QueuedBy(who: "POST /post_sentence", rule: "count 5000 falls in silver (1000–9999)"))
        let above = try #require(plain.target(count: 200_000, current: "bronze"))
        #expect(QueuedBy.count(200_000, from: .enqueueCommand, decision: above, placement: plain).rule
            == "count 200000 is above every range: gold's max_counts was raised to it")
        let held = Placement(table: table, policies: ["gold": LevelPolicy(hysteresis: 20)])
        let stays = try #require(held.target(count: 8500, current: "gold"))
        let by = QueuedBy.count(8500, from: .countRoute, decision: stays, placement: held)
        #expect(by.who == "POST /v1/contents/{cid}/count" && by.rule.hasPrefix("count 8500 keeps it on gold: ") && by.rule.contains("hysteresis"))
    }

    @Test func itIsKeptAsOneTextAndReadBack() {
        let by = QueuedBy(who: "the rebalancer (watermark)\nwith a newline", rule: "gold is at 95.0 %\nabove its high watermark")
        let read = QueuedBy(stored: by.stored)
        #expect(read.who == "the rebalancer (watermark) with a newline" && read.rule == by.rule)
        #expect(QueuedBy(who: "POST /post_sentence", rule: "count 7 falls in bronze").stored == "POST /post_sentence\ncount 7 falls in bronze")
        // Only a line feed on its own is a line break to replace ("\r\n" is one character).
        #expect(QueuedBy(who: "a\nb\r\nc", rule: "r").stored == "a b\r\nc\nr")
        // Read back at the first line feed that is a character of its own.
        #expect(QueuedBy(stored: "a\r\nb\nc\nd") == QueuedBy(who: "a\r\nb", rule: "c\nd"))
        #expect(QueuedBy(stored: "a\r\nb") == QueuedBy(who: "a\r\nb", rule: ""))
        #expect(QueuedBy(stored: "\nr") == QueuedBy(who: "", rule: "r") && QueuedBy(stored: "é\n") == QueuedBy(who: "é", rule: ""))
        #expect(QueuedBy(stored: "just who") == QueuedBy(who: "just who", rule: "") && QueuedBy(stored: "just who").sentence == "just who")
        #expect(QueuedBy.replay(by: "relocator dlq replay", earlier: nil)
            == QueuedBy(who: "a replay (relocator dlq replay)", rule: "the target it had when it died"))
    }
}

/// Who a job says queued it, for every way in, and the words of replays, purges and follow-ups.
@Suite struct SubmitterWordsTests {
    @Test func everyWayInIsNamedAsTheOperatorKnowsIt() {
        #expect(Submitter.postSentence.who == "POST /post_sentence")
        #expect(Submitter.countRoute.who == "POST /v1/contents/{cid}/count")
        #expect(Submitter.hitsRoute.who == "POST /v1/contents/{cid}/hits")
        #expect(Submitter.enqueueCommand.who == "relocator enqueue")
        #expect(Submitter.hitsCommand.who == "relocator enqueue --hits")
        #expect(Submitter.rebalancer(kind: "decay").who == "the rebalancer (decay)")
        #expect(Submitter.other("a test").who == "a test")
    }

    @Test func aReplaySaysWhoReplayedItAndKeepsTheFirstRule() {
        let first = QueuedBy(who: "POST /post_sentence", rule: "count 5000 falls in silver (1000–9999)")
        let replay = QueuedBy.replay(by: "relocator dlq replay", earlier: first)
        #expect(replay.who == "a replay (relocator dlq replay) of a job queued by POST /post_sentence")
        #expect(replay.rule == first.rule)
    }

    @Test func aPurgeThatSendsAJobBackSaysWhereAndWhy() {
        let back = QueuedBy.purgeReversal(by: "POST /v1/dead/purge", copyOn: "gold", backTo: "bronze")
        #expect(back.sentence == "a purge (POST /v1/dead/purge): its copy may already be on gold: it goes back to bronze, where the database has it")
    }

    @Test func aFollowUpNamesTheMoveItFollows() {
        #expect(QueuedBy.followUpPrefix(after: "gold") + "relocator enqueue" == "a follow-up after the move to gold of relocator enqueue")
    }

    @Test func aCountWithoutItsRangeStillNamesTheLevel() {
        #expect(QueuedBy.count(7, from: .countRoute, level: "tape", range: nil, raised: false).rule == "count 7 falls in tape")
        #expect(QueuedBy.count(7, from: .countRoute, level: "tape", range: LevelRange(name: "tape", minCounts: 0, maxCounts: 9), raised: false).rule
                == "count 7 falls in tape (0–9)")
    }
}
