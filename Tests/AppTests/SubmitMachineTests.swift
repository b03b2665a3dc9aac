import RelocatorApp
import RelocatorCore
import Testing

/// The submit path's rules, without I/O: which read, which submission, when to read again.
@Suite struct SubmitMachineTests {
    let placement = Placement(table: LevelTable(LevelRange.defaults))
    let bronze = Content(cid: 7, filename: "g.mp4", level: "bronze")

    func machine(_ count: Int64, now: Int64 = 5_000) -> SubmitMachine {
        SubmitMachine(cid: 7, count: count, placement: placement, policy: .none, now: now)
    }

    func job(from: String, to: String) -> Job {
        Job(cid: 7, count: 20000, filename: "g.mp4", dbLevel: from, target: to, status: .queued, attempts: 0, lastError: nil, gen: 1,
            enqueuedAt: 1, updatedAt: 1)
    }

    @Test func withoutACachedReadTheContentIsReadAndAnUnknownOneFails() {
        var m = machine(20000)
        #expect(m.start(cached: nil, readAt: SubmitRequest.freshRead) == .readContent)
        #expect(m.contentRead(nil) == .fail(.unknownContent(7)))
    }

    @Test func aFreshReadIsSubmittedAsOneThatStandsAndFinishes() throws {
        var m = machine(20000)
        _ = m.start(cached: nil, readAt: SubmitRequest.freshRead)
        guard case .submit(let request, let raise) = m.contentRead(bronze) else { Issue.record("no submission"); return }
        #expect(request.target == "gold" && request.dbLevel == "bronze" && request.readAt == SubmitRequest.freshRead && request.sentAt == nil)
        #expect(raise == nil)
        let result = SubmitResult(outcome: .created, job: job(from: "bronze", to: "gold"))
        #expect(m.submitted(result) == .finish(.init(content: bronze, count: 20000, target: "gold", result: result)))
    }

    /// A read cached at the very start of the clock is sent as older than anything (0), never as a
    /// negative time, which would read as a fresh read.
    @Test func aCachedReadNeverGoesOutAsAFreshOne() {
        var m = machine(20000, now: 9_000)
        guard case .submit(let request, _) = m.start(cached: bronze, readAt: 10) else { Issue.record("no submission"); return }
        #expect(request.readAt == 0 && request.sentAt == 9_000)
    }

    /// A cached read goes out with the lower bound of the queue's clock it was read at; so does the
    /// read from the store after a stale answer, with its own.
    @Test func aCachedReadCarriesItsBoundOnTheQueuesClockAndSoDoesTheReadAfter() {
        var m = machine(20000, now: 9_000)
        guard case .submit(let request, _) = m.start(cached: bronze, readAt: 4_000, readBound: 77_000) else { Issue.record("no submission"); return }
        #expect(request.readBound == 77_000 && request.sentAt == 9_000)
        #expect(m.submitted(SubmitResult(outcome: .staleLevel, job: nil)) == .readContent)
        guard case .submit(let again, _) = m.contentRead(bronze, readAt: 8_500, readBound: 81_000) else { Issue.record("no second submission"); return }
        #expect(again.readBound == 81_000 && again.readAt == 8_500 - SubmitMachine.transitAllowance && again.sentAt == 9_000)
    }

    /// A read from the store goes to the queue with its age, as a cached one does: the process may
    /// pause between the read and the submission while a rename or a change of level is made.
    @Test func aReadFromTheStoreGoesWithItsAgeAndItsBound() {
        var m = machine(20000, now: 9_000)
        #expect(m.start(cached: nil, readAt: SubmitRequest.freshRead) == .readContent)
        guard case .submit(let request, _) = m.contentRead(bronze, readAt: 8_900, readBound: 70_000) else { Issue.record("no submission"); return }
        #expect(request.readAt == 8_900 - SubmitMachine.transitAllowance && request.sentAt == 9_000 && request.readBound == 70_000)
        #expect(request.readAt != SubmitRequest.freshRead)
    }

    /// The queue calls a read from the store stale when the content changed just before it (or
    /// while the process paused after it): the content is read again after a pause long enough
    /// for the next read to be placed after the change, and a third stale answer gives up.
    @Test func aReadFromTheStoreCalledStaleIsReadAgainAfterAPause() {
        var m = machine(20000, now: 9_000)
        _ = m.start(cached: nil, readAt: SubmitRequest.freshRead)
        _ = m.contentRead(bronze, readAt: 8_900, readBound: nil)
        #expect(m.submitted(SubmitResult(outcome: .staleLevel, job: nil)) == .pauseThenReadContent)
        let renamed = Content(cid: 7, filename: "h.mp4", level: "bronze")
        guard case .submit(let again, _) = m.contentRead(renamed, readAt: 10_000, readBound: nil) else { Issue.record("no second submission"); return }
        #expect(again.filename == "h.mp4")
        #expect(m.submitted(SubmitResult(outcome: .staleLevel, job: nil)) == .pauseThenReadContent)
        _ = m.contentRead(renamed, readAt: 11_100, readBound: nil)
        #expect(m.submitted(SubmitResult(outcome: .staleLevel, job: nil)) == .fail(.unsettled(7)))
        #expect(SubmitMachine.staleReadPause > SubmitMachine.transitAllowance)
    }

    /// A job whose origin is not the level just read from the store (a reversed job: its file came
    /// back and no move of it committed) does not send the count to read again: the store's read
    /// is the newest there is.
    @Test func aReadFromTheStoreThatAJobContradictsStands() {
        var m = machine(20000)
        _ = m.start(cached: nil, readAt: SubmitRequest.freshRead)
        _ = m.contentRead(bronze, readAt: 4_900, readBound: nil)
        let result = SubmitResult(outcome: .created, job: job(from: "silver", to: "gold"))
        #expect(m.submitted(result) == .finish(.init(content: bronze, count: 20000, target: "gold", result: result)))
    }

    @Test func aCachedReadCarriesItsAgeAndIsReadAgainWhenTheQueueSaysTheLevelChanged() {
        var m = machine(20000, now: 9_000)
        guard case .submit(let request, _) = m.start(cached: bronze, readAt: 4_000) else { Issue.record("no submission"); return }
        // The read counts as older by the call's allowance for its time on the way.
        #expect(request.readAt == 4_000 - SubmitMachine.transitAllowance && request.sentAt == 9_000)
        #expect(m.submitted(SubmitResult(outcome: .staleLevel, job: nil)) == .readContent)
        let silver = Content(cid: 7, filename: "g.mp4", level: "silver")
        guard case .submit(let again, _) = m.contentRead(silver, readAt: 8_800) else { Issue.record("no second submission"); return }
        #expect(again.dbLevel == "silver" && again.readAt == 8_800 - SubmitMachine.transitAllowance && again.sentAt == 9_000)
        let created = SubmitResult(outcome: .created, job: job(from: "silver", to: "gold"))
        let silverRead = Content(cid: 7, filename: "g.mp4", level: "silver")
        #expect(m.submitted(created) == .finish(.init(content: silverRead, count: 20000, target: "gold", result: created)))
    }

    @Test func aCachedReadThatAJobContradictsIsReadAgain() {
        var m = machine(20000)
        _ = m.start(cached: bronze, readAt: 4_000)
        // The queue's job says the file is on silver now (a committed job knew better).
        #expect(m.submitted(SubmitResult(outcome: .created, job: job(from: "silver", to: "gold"))) == .readContent)
    }

    @Test func aFreshReadThatIsCalledStaleGivesUpInsteadOfLooping() {
        var m = machine(20000)
        _ = m.start(cached: nil, readAt: SubmitRequest.freshRead)
        _ = m.contentRead(bronze)
        #expect(m.submitted(SubmitResult(outcome: .staleLevel, job: nil)) == .fail(.unsettled(7)))
    }

    @Test func aCountAboveEveryRangeRaisesTheTopLevel() {
        var m = machine(150_000)
        guard case .submit(let request, let raise) = m.start(cached: bronze, readAt: 1) else { Issue.record("no submission"); return }
        #expect(request.target == "gold" && raise == .init(level: "gold", count: 150_000))
    }

    @Test func aCountNoLevelHoldsFails() {
        let gap = Placement(table: LevelTable([LevelRange(name: "bronze", minCounts: 0, maxCounts: 9), LevelRange(name: "gold", minCounts: 100, maxCounts: 999)]))
        var m = SubmitMachine(cid: 7, count: 50, placement: gap, policy: .none)
        #expect(m.start(cached: bronze, readAt: 1) == .fail(.noLevel(count: 50)))
    }

    @Test func aFreshReadStandsWhateverTheJobSays() {
        var m = machine(20000)
        _ = m.start(cached: bronze, readAt: 1)
        #expect(m.submitted(SubmitResult(outcome: .staleLevel, job: nil)) == .readContent)
        _ = m.contentRead(Content(cid: 7, filename: "g.mp4", level: "silver"))
        let result = SubmitResult(outcome: .updated, job: job(from: "bronze", to: "gold"))
        guard case .finish(let done) = m.submitted(result) else { Issue.record("a fresh read was read again"); return }
        #expect(done.content.level == "silver" && done.result == result)
    }
}
