import RelocatorApp
import RelocatorCore
import Testing

/// More of the submit rules, without I/O: how often a changing level is read again, what the
/// queue's answer says of where the file is, and what a submission carries.
@Suite struct SubmitMachineRulesTests {
    let placement = Placement(table: LevelTable(LevelRange.defaults))
    let bronze = Content(cid: 7, filename: "g.mp4", level: "bronze")

    func machine(_ count: Int64, policy: CountPolicy = .none, submitter: Submitter = .countRoute) -> SubmitMachine {
        SubmitMachine(cid: 7, count: count, placement: placement, policy: policy, now: 9_000, submitter: submitter)
    }

    @Test func aLevelThatKeepsChangingIsGivenUpOnAfterThreeSubmissions() {
        var m = machine(20000)
        var action = m.start(cached: bronze, readAt: 4_000)
        var submissions = 0
        while case .submit = action {
            submissions += 1
            // Each read is cached again and contradicted again.
            action = m.submitted(SubmitResult(outcome: .staleLevel, job: nil))
            if action == .readContent { action = m.start(cached: bronze, readAt: 4_000) }
        }
        #expect(submissions == 3)
        #expect(action == .fail(.unsettled(7)))
    }

    @Test func aCountFoundInPlaceOnAnotherLevelThanTheCachedOneIsReadAgain() {
        var m = machine(500)
        // Cached on gold; the count belongs to bronze, and the queue found the file there already.
        let gold = Content(cid: 7, filename: "g.mp4", level: "gold")
        guard case .submit(let request, _) = m.start(cached: gold, readAt: 4_000) else { Issue.record("no submission"); return }
        #expect(request.target == "bronze")
        #expect(m.submitted(SubmitResult(outcome: .inPlace, job: nil)) == .readContent)
    }

    @Test func aCountFoundInPlaceWhereTheCachedReadSaysFinishes() {
        var m = machine(500)
        guard case .submit = m.start(cached: bronze, readAt: 4_000) else { Issue.record("no submission"); return }
        let result = SubmitResult(outcome: .inPlace, job: nil)
        #expect(m.submitted(result) == .finish(.init(content: bronze, count: 500, target: "bronze", result: result)))
    }

    @Test func anAnswerBeforeAnySubmissionIsUnsettled() {
        var m = machine(20000)
        #expect(m.submitted(SubmitResult(outcome: .created, job: nil)) == .fail(.unsettled(7)))
    }

    @Test func theSubmissionCarriesThePolicyTheFilenameAndWhoSentItWithTheRule() {
        let policy = CountPolicy(halfLife: .seconds(60), residencies: ["gold": .seconds(5)])
        var m = machine(20000, policy: policy, submitter: .postSentence)
        _ = m.start(cached: nil, readAt: SubmitRequest.freshRead)
        guard case .submit(let request, _) = m.contentRead(bronze) else { Issue.record("no submission"); return }
        #expect(request.policy == policy && request.filename == "g.mp4" && request.cid == 7 && request.count == 20000)
        #expect(request.queuedBy?.who == Submitter.postSentence.who)
        #expect(request.queuedBy?.rule.contains("20000") == true)
    }

    @Test func aCountAboveTheTopRangeAsksForTheRaiseWithTheSubmission() {
        var m = machine(150_000)
        guard case .submit(let request, let raise) = m.start(cached: bronze, readAt: 4_000) else { Issue.record("no submission"); return }
        #expect(request.target == "gold" && raise == SubmitMachine.Raise(level: "gold", count: 150_000))
    }

    @Test func aCountDroppedOnTheCachedLevelFinishesAndOneDroppedElsewhereIsReadAgain() {
        var here = machine(500)
        guard case .submit = here.start(cached: bronze, readAt: 4_000) else { Issue.record("no submission"); return }
        let dropped = SubmitResult(outcome: .dropped, job: nil)
        #expect(here.submitted(dropped) == .finish(.init(content: bronze, count: 500, target: "bronze", result: dropped)))
        var elsewhere = machine(500)
        let silver = Content(cid: 7, filename: "g.mp4", level: "silver")
        guard case .submit = elsewhere.start(cached: silver, readAt: 4_000) else { Issue.record("no submission"); return }
        #expect(elsewhere.submitted(dropped) == .readContent)
    }

    @Test func aFreshReadFinishesWhateverLevelTheQueueFoundTheFileOn() {
        var m = machine(500)
        _ = m.start(cached: nil, readAt: SubmitRequest.freshRead)
        let gold = Content(cid: 7, filename: "g.mp4", level: "gold")
        guard case .submit = m.contentRead(gold) else { Issue.record("no submission"); return }
        let inPlace = SubmitResult(outcome: .inPlace, job: nil)
        #expect(m.submitted(inPlace) == .finish(.init(content: gold, count: 500, target: "bronze", result: inPlace)))
    }
}
