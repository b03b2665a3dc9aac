import RelocatorCore
import Testing

/// Pages of dead letters and scheduled jobs, and the job ids and hashes they are made of: pure.
@Suite struct PageRequestTests {
    @Test func aLimitIsKeptWithinOneToTheMaximumAndAnEmptyCursorIsNone() {
        #expect(PageRequest(limit: 0).limit == 1)
        #expect(PageRequest(limit: 5000).limit == PageRequest.maximumLimit)
        #expect(PageRequest(limit: 7, cursor: "").cursor == nil)
        #expect(PageRequest().limit == PageRequest.defaultLimit)
    }

    @Test func aLimitOutOfRangeIsAProblemNamingTheRange() {
        #expect(PageRequest.problem(limit: 0, cursor: nil) == "limit must be a whole number from 1 to 1000, got 0")
        #expect(PageRequest.problem(limit: 1001, cursor: nil) == "limit must be a whole number from 1 to 1000, got 1001")
        #expect(PageRequest.problem(limit: 1000, cursor: "5:1") == nil)
        #expect(PageRequest.problem(limit: nil, cursor: nil) == nil)
    }

    @Test func aCursorTooLongOrOverLinesIsNotOneThisAPIGaveOut() {
        #expect(PageRequest.problem(limit: nil, cursor: String(repeating: "a", count: 257)) != nil)
        #expect(PageRequest.problem(limit: nil, cursor: String(repeating: "a", count: 256)) == nil)
        #expect(PageRequest.problem(limit: nil, cursor: "5:1\n6:2")?.contains("next_cursor") == true)
    }

    @Test func aPageMapsItsItemsAndKeepsItsTotalAndNext() {
        let page = Page(items: [1, 2], total: 9, next: "2").map { String($0 * 10) }
        #expect(page.items == ["10", "20"] && page.total == 9 && page.next == "2")
    }
}

@Suite struct DeadLetterOrderTests {
    @Test func newestGenerationFirstThenHigherCid() {
        let page = DeadLetterOrder.page(["1:100", "2:300", "3:200", "4:300"], after: nil, limit: 10)
        #expect(page.items == ["4:300", "2:300", "3:200", "1:100"])
        #expect(page.total == 4 && page.next == nil)
    }

    @Test func aCursorGivesTheNextPageWithoutRepeatsOrGaps() {
        let ids = (1...7).map { "\($0):\(1000 + $0)" }
        let first = DeadLetterOrder.page(ids, after: nil, limit: 3)
        #expect(first.items == ["7:1007", "6:1006", "5:1005"] && first.next == "5:1005")
        let second = DeadLetterOrder.page(ids, after: first.next, limit: 3)
        #expect(second.items == ["4:1004", "3:1003", "2:1002"] && second.next == "2:1002")
        let last = DeadLetterOrder.page(ids, after: second.next, limit: 3)
        #expect(last.items == ["1:1001"] && last.next == nil && last.total == 7)
    }

    @Test func anIdThatIsNoJobIdComesLastAndDuplicatesCountOnce() {
        let page = DeadLetterOrder.page(["junk", "1:5", "1:5", "2:4"], after: nil, limit: 10)
        #expect(page.items == ["1:5", "2:4", "junk"])
        #expect(page.total == 3)
    }

    @Test func anIdRemovedBetweenPagesDoesNotShiftTheNextPage() {
        let first = DeadLetterOrder.page(["3:30", "2:20", "1:10"], after: nil, limit: 1)
        #expect(first.items == ["3:30"])
        // 3:30 was replayed meanwhile: the cursor still points after it.
        let second = DeadLetterOrder.page(["2:20", "1:10"], after: first.next, limit: 1)
        #expect(second.items == ["2:20"] && second.next == "2:20")
    }
}

@Suite struct ScheduleOrderTests {
    @Test func soonestFirstThenByMemberBytes() {
        let sorted = [ScheduleOrder(score: 20, member: "b"), ScheduleOrder(score: 10, member: "z"), ScheduleOrder(score: 20, member: "a")].sorted()
        #expect(sorted.map(\.member) == ["z", "a", "b"])
    }

    @Test func aCursorIsTheScoreAndTheMemberAndReadsBack() throws {
        let order = ScheduleOrder(score: 1_764_000_000_000, member: "5:17")
        #expect(order.cursor == "1764000000000 5:17")
        let back = try #require(ScheduleOrder(cursor: order.cursor))
        #expect(back.score == order.score && back.member == "5:17")
        #expect(ScheduleOrder.scoreText(1.5) == "1.5")
    }

    @Test func aMalformedCursorIsRefused() {
        for cursor in ["", "12", "12 ", "x 5:1", "inf 5:1", "nan 5:1"] {
            #expect(ScheduleOrder(cursor: cursor) == nil, "\(cursor)")
        }
    }

    @Test func theSmallestAreChosenInOrder() {
        #expect(smallest([5, 3, 9, 1, 7], count: 3) == [1, 3, 5])
        #expect(smallest([2, 1], count: 5) == [1, 2])
        #expect(smallest([2, 1], count: 0).isEmpty)
    }
}

@Suite struct JobIDTests {
    @Test func anIdIsACidAndAGenerationApartByAColon() throws {
        let id = try #require(JobID("42:1764000000000"))
        #expect(id.cid == 42 && id.gen == 1_764_000_000_000 && id.description == "42:1764000000000")
    }

    @Test func anythingElseIsNoId() {
        for text in ["", "42", "42:", ":5", "a:1", "1:2:3", "1:99999999999999999999"] {
            #expect(JobID(text) == nil, "\(text)")
        }
    }
}

@Suite struct JobHashTests {
    @Test func aJobReadsBackFromItsHashField() throws {
        var job = Job(cid: 7, count: 12, filename: "a/b.mp4", dbLevel: "bronze", target: "gold", status: .moving, attempts: 2,
                      workerID: "w1", gen: 99, enqueuedAt: 1, updatedAt: 2, nextTarget: "silver")
        job.stage = .copying
        job.token = 5
        job.queuedBy = QueuedBy(who: "relocator enqueue", rule: "count 12")
        let hash = Dictionary(uniqueKeysWithValues: job.fields.compactMap { field, value in value.map { (field.rawValue, $0) } })
        let back = try #require(Job(hash: hash))
        #expect(back.cid == 7 && back.target == "gold" && back.status == .moving && back.attempts == 2 && back.nextTarget == "silver")
        #expect(back.stage == .copying && back.token == 5 && back.queuedBy == job.queuedBy && back.id == "7:99")
    }

    @Test func aHashThatIsNoJobNamesTheField() {
        let base = ["cid": "7", "gen": "9", "status": "queued", "filename": "f", "db_level": "bronze", "target": "gold"]
        #expect(Job(hash: [:]) == nil)
        var noStatus = base
        noStatus["status"] = nil
        guard case .failure(let missing) = Job.decode(noStatus) else { Issue.record("decoded"); return }
        #expect(missing.description == "the job has no 'status' field")
        var badStatus = base
        badStatus["status"] = "flying"
        guard case .failure(let malformed) = Job.decode(badStatus) else { Issue.record("decoded"); return }
        #expect(malformed.description == "the job's 'status' field is malformed: 'flying'")
        var badNumber = base
        badNumber["attempts"] = "many"
        guard case .failure(let number) = Job.decode(badNumber) else { Issue.record("decoded"); return }
        #expect(number.field == .attempts)
    }

    @Test func anEmptyValueIsAbsentAndNullIsAFilename() throws {
        let job = try #require(Job(hash: ["cid": "7", "gen": "9", "status": "queued", "filename": "null", "db_level": "bronze", "target": "gold",
                                          "worker_id": ""]))
        #expect(job.filename == "null" && job.workerID == nil)
    }
}
