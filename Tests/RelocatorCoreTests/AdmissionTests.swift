import RelocatorCore
import Testing

/// Admission (permits, room, bandwidth) as state machines: events in, actions out, no I/O.
@Suite struct AdmissionTests {
    let table = LevelTable(LevelRange.defaults)

    // MARK: Permits

    @Test func levelsWithoutALimitAreTakenFromWithoutAskingForAPermit() {
        var permits = Admission.Permits(levels: ["gold", "silver"], limits: [:])
        #expect(permits.start() == .take(["gold", "silver"]))
        #expect(permits.held.isEmpty)
    }

    @Test func aLimitedLevelIsTakenFromOnlyWithAPermit() {
        var permits = Admission.Permits(levels: ["gold", "silver", "bronze"], limits: ["silver": 2])
        #expect(permits.start() == .askPermit(level: "silver", most: 2))
        #expect(permits.answered(.granted) == .take(["gold", "silver", "bronze"]))
        #expect(permits.held == ["silver"])
    }

    @Test func aLevelAtItsLimitIsLeftOutAndTheOthersKeepTheirOrder() {
        var permits = Admission.Permits(levels: ["gold", "silver", "bronze"], limits: ["gold": 1, "bronze": 3])
        #expect(permits.start() == .askPermit(level: "gold", most: 1))
        #expect(permits.answered(.refused) == .askPermit(level: "bronze", most: 3))
        #expect(permits.answered(.granted) == .take(["silver", "bronze"]))
        #expect(permits.held == ["bronze"])
    }

    @Test func everyLevelAtItsLimitMeansIdle() {
        var permits = Admission.Permits(levels: ["gold", "silver"], limits: ["gold": 1, "silver": 1])
        #expect(permits.start() == .askPermit(level: "gold", most: 1))
        #expect(permits.answered(.refused) == .askPermit(level: "silver", most: 1))
        #expect(permits.answered(.refused) == .idle)
        #expect(permits.held.isEmpty)
    }

    @Test func aLimitOfZeroIsNoLimit() {
        var permits = Admission.Permits(levels: ["gold"], limits: ["gold": 0])
        #expect(permits.start() == .take(["gold"]))
    }

    @Test func onlyThePermitOfTheDeliveredLevelIsKeptTheRestGoBack() {
        var permits = Admission.Permits(levels: ["gold", "silver"], limits: ["gold": 1, "silver": 1])
        _ = permits.start()
        _ = permits.answered(.granted)
        #expect(permits.answered(.granted) == .take(["gold", "silver"]))
        let fromSilver = permits.delivered(from: "silver")
        #expect(fromSilver.keep == ["silver"] && fromSilver.release == ["gold"])
        let nothing = permits.delivered(from: nil)
        #expect(nothing.keep.isEmpty && nothing.release == ["gold", "silver"])
        let unlimited = permits.delivered(from: "bronze")
        #expect(unlimited.keep.isEmpty && unlimited.release == ["gold", "silver"])
    }

    @Test func noLevelsMeansIdle() {
        var permits = Admission.Permits(levels: [], limits: ["gold": 1])
        #expect(permits.start() == .idle)
    }

    // MARK: Room

    func room(highWater: Int? = 80) -> Admission.Room {
        Admission.Room(target: "gold", placement: Placement(table: table, policies: highWater.map { ["gold": LevelPolicy(highWater: $0)] } ?? [:]))
    }

    @Test func aTargetWithoutAHighWatermarkAdmitsWithoutLooking() {
        #expect(room(highWater: nil).start() == .go(reserved: nil))
    }

    @Test func aCopyThatFitsReservesItsSizeAndGoes() {
        var room = room()
        #expect(room.start() == .sizeSource)
        #expect(room.sourceSized(100) == .sizeEarlierCopy)
        #expect(room.earlierCopySized(nil) == .readDisk)
        // 1000 bytes, 500 used: 800 at the watermark, 300 of room.
        #expect(room.diskRead(Placement.Usage(used: 500, available: 500)) == .reserve(bytes: 100, room: 300))
        #expect(room.reserved(.granted) == .go(reserved: 100))
    }

    @Test func anEarlierDeliverysTemporaryFileIsNotCountedTwice() {
        var room = room()
        _ = room.start()
        _ = room.sourceSized(100)
        #expect(room.earlierCopySized(60) == .readDisk)
        #expect(room.diskRead(Placement.Usage(used: 500, available: 500)) == .reserve(bytes: 40, room: 300))
        var whole = self.room()
        _ = whole.sourceSized(100)
        _ = whole.earlierCopySized(150)
        #expect(whole.diskRead(Placement.Usage(used: 500, available: 500)) == .reserve(bytes: 0, room: 300))
    }

    @Test func whatOthersHoldMakesACopyWaitSayingWhy() {
        var room = room()
        _ = room.sourceSized(100)
        _ = room.earlierCopySized(nil)
        _ = room.diskRead(Placement.Usage(used: 500, available: 500))
        guard case .wait(let why) = room.reserved(.roomHeld(others: 250)) else {
            Issue.record("a copy that would pass the watermark was admitted")
            return
        }
        #expect(why == "gold would be at 85.0 % (high watermark 80 %)")
    }

    @Test func aCopyThatCouldNeverFitSaysSo() {
        var room = room()
        _ = room.sourceSized(900)
        _ = room.earlierCopySized(nil)
        _ = room.diskRead(Placement.Usage(used: 0, available: 1000))
        guard case .wait(let why) = room.reserved(.refused) else {
            Issue.record("admitted")
            return
        }
        #expect(why.hasPrefix(Placement.doesNotFitPrefix))
    }

    @Test func anUnreadableSourceOrDiskLetsTheMoveSayWhatIsWrong() {
        var room = room()
        #expect(room.sourceSized(nil) == .go(reserved: nil))
        var noDisk = self.room()
        _ = noDisk.sourceSized(10)
        _ = noDisk.earlierCopySized(nil)
        #expect(noDisk.diskRead(nil) == .go(reserved: nil))
        var emptyDisk = self.room()
        _ = emptyDisk.sourceSized(10)
        _ = emptyDisk.earlierCopySized(nil)
        #expect(emptyDisk.diskRead(Placement.Usage(used: 0, available: 0)) == .go(reserved: nil))
    }

    @Test func aReservationThatCannotBeAskedForWaits() {
        var room = room()
        _ = room.sourceSized(10)
        _ = room.earlierCopySized(nil)
        _ = room.diskRead(Placement.Usage(used: 0, available: 1000))
        #expect(room.reserveFailed("redis is down") == .wait("cannot reserve room in gold: redis is down"))
    }

    // MARK: Bandwidth

    @Test func bytesArePaidForInPiecesOfATwentiethOfASecond() {
        var payment = Admission.Bandwidth(bytes: 250, rate: 2000)
        #expect(payment.start() == .pay(100))
        #expect(payment.answered(.granted) == .pay(100))
        #expect(payment.answered(.granted) == .pay(50))
        #expect(payment.answered(.granted) == .write)
        #expect(payment.owed == 0)
    }

    @Test func aBucketThatSaysWaitIsWaitedForAndAskedAgain() {
        var payment = Admission.Bandwidth(bytes: 10, rate: 2000)
        #expect(payment.start() == .pay(10))
        #expect(payment.answered(.wait(.milliseconds(40))) == .sleep(.milliseconds(40)))
        #expect(payment.owed == 10)
        #expect(payment.slept() == .pay(10))
        #expect(payment.answered(.granted) == .write)
    }

    @Test func anUnreachableBucketLetsTheWriteGoOn() {
        var payment = Admission.Bandwidth(bytes: 10_000, rate: 100)
        #expect(payment.start() == .pay(5))
        #expect(payment.failed() == .write)
        #expect(payment.owed == 0)
    }

    @Test func nothingToWriteOrATinyRateNeverStalls() {
        #expect(Admission.Bandwidth(bytes: 0, rate: 100).start() == .write)
        // A rate below 20 bytes a second still pays a byte at a time.
        var slow = Admission.Bandwidth(bytes: 2, rate: 1)
        #expect(slow.start() == .pay(1))
        #expect(slow.answered(.granted) == .pay(1))
        #expect(slow.answered(.granted) == .write)
    }
}

/// Admission's less travelled branches.
@Suite struct AdmissionEdgeTests {
    let placement = Placement(table: LevelTable(LevelRange.defaults), policies: ["gold": LevelPolicy(highWater: 80)])

    @Test func aRefusalThatTheWatermarkRuleDoesNotExplainStillSaysWhatRoomThereWas() {
        var room = Admission.Room(target: "gold", placement: placement)
        _ = room.sourceSized(10)
        _ = room.earlierCopySized(nil)
        // 1000 bytes, 500 used: 300 of room; 10 more bytes fit by the rule, the queue refused anyway.
        _ = room.diskRead(Placement.Usage(used: 500, available: 500))
        #expect(room.reserved(.refused) == .wait("gold has room for 300 bytes, and other copies into it hold 0"))
    }

    @Test func aTargetWithoutAHighWatermarkAmongOthersWithOneIsNotLookedAt() {
        #expect(Admission.Room(target: "silver", placement: placement).start() == .go(reserved: nil))
    }

    @Test func aNegativeSizeFromOutsideCountsAsNothing() {
        var room = Admission.Room(target: "gold", placement: placement)
        _ = room.sourceSized(-50)
        _ = room.earlierCopySized(-7)
        #expect(room.diskRead(Placement.Usage(used: 500, available: 500)) == .reserve(bytes: 0, room: 300))
    }
}
