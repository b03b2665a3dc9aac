import RelocatorCore
import Testing

/// The placement rules, pure: no server, no clock.
@Suite struct PlacementTests {
    let table = LevelTable(LevelRange.defaults)

    @Test func withoutPoliciesEveryAnswerIsTheSeeds() {
        let placement = Placement(table: table)
        for count: Int64 in [0, 999, 1000, 9999, 10000, 99999, 123_456] {
            let seed = table.choose(count: count)
            let decision = placement.target(count: count, current: "gold")
            #expect(decision?.level == seed?.level && decision?.raiseMaxCounts == seed?.raiseMaxCounts && decision?.heldBy == nil)
        }
        #expect(placement.admission(into: "gold", usage: .init(used: 99, available: 1), adding: 10) == nil)
        #expect(placement.excess(of: "gold", usage: .init(used: 99, available: 1)) == nil)
        #expect(placement.residencyEnds(level: "gold", lastMoved: 0, now: 1) == nil)
        #expect(placement.takingOrder(["bronze", "gold", "silver"]) == ["gold", "silver", "bronze"])
    }

    @Test func hysteresisKeepsAContentOnItsLevelUntilItsCountFallsClearlyBelow() {
        let placement = Placement(table: table, policies: ["gold": LevelPolicy(hysteresis: 20)])
        // gold starts at 10000: a content leaves downward only below 8000.
        #expect(placement.target(count: 8500, current: "gold")?.level == "gold")
        #expect(placement.target(count: 8500, current: "gold")?.heldBy?.contains("hysteresis") == true)
        #expect(placement.target(count: 7999, current: "gold")?.level == "silver")
        // Upward moves are the seed's: a silver content goes up at 10000.
        #expect(placement.target(count: 10000, current: "silver")?.level == "gold")
        // A content whose level has no hysteresis follows the seed.
        #expect(placement.target(count: 900, current: "silver")?.level == "bronze")
    }

    @Test func aContentMovedRecentlyWaitsForItsLevelsMinimumResidency() {
        let placement = Placement(table: table, policies: ["gold": LevelPolicy(minResidency: 3600)])
        let end: Int64 = 4_600_000
        let soon = placement.residencyEnds(level: "gold", lastMoved: 1_000_000, now: 1_060_000)
        #expect(soon == end)
        #expect(placement.residencyEnds(level: "gold", lastMoved: 1_000_000, now: 1_000_000 + 3_600_000) == nil)
        #expect(placement.residencyEnds(level: "gold", lastMoved: nil, now: 5) == nil)
        #expect(placement.residencyEnds(level: "silver", lastMoved: 1_000_000, now: 1_000_001) == nil)
    }

    @Test func aMoveThatWouldRiseAboveTheHighWatermarkWaitsAndAFullLevelShedsToItsLowOne() {
        let placement = Placement(table: table, policies: ["gold": LevelPolicy(highWater: 90, lowWater: 70)])
        let usage = Placement.Usage(used: 85, available: 15)
        #expect(placement.admission(into: "gold", usage: usage, adding: 4) == nil)
        #expect(placement.admission(into: "gold", usage: usage, adding: 6)?.contains("high watermark 90") == true)
        #expect(placement.admission(into: "gold", usage: usage, adding: 2, inFlight: 4)?.contains("91.0 %") == true)
        #expect(placement.excess(of: "gold", usage: usage) == nil)
        #expect(placement.excess(of: "gold", usage: .init(used: 95, available: 5)) == 25)
        #expect(placement.levelBelow("gold") == "silver" && placement.levelBelow("bronze") == nil)
    }

    /// A disk of 100 bytes of which the filesystem reserves 20 for root: 40 used, 40 available.
    /// `df` says 50 % (used / (used + available)), not 40 % (used / size), and so does placement:
    /// every watermark is a share of the 80 bytes a worker may fill.
    @Test func theFillIsDfsUsedOverUsedPlusAvailableForEveryWatermark() {
        let usage = Placement.Usage(DiskReport.Usage(used: 40, free: 40, size: 100))
        #expect(usage.capacity == 80 && usage.percent == 50)
        let placement = Placement(table: table, policies: ["gold": LevelPolicy(highWater: 45, lowWater: 40)])
        // Above 45 % by df's measure, though used / size is only 40 %.
        #expect(placement.excess(of: "gold", usage: usage) == 8)
        #expect(placement.room(in: "gold", usage: usage) == -4)
        #expect(placement.watermarkBytes(of: "gold", usage: usage).map { [$0.high, $0.low] } == [36, 32])
        #expect(placement.admission(into: "gold", usage: usage, adding: 0)?.contains("50.0 % (high watermark 45 %)") == true)
        #expect(placement.doesNotFit("gold", usage: usage, bytes: 37)?.contains("(room 36B of 80B)") == true)
        #expect(placement.doesNotFit("gold", usage: usage, bytes: 36) == nil)
        // Numbers from a heartbeat are taken as they come: nothing traps.
        let odd = Placement.Usage(DiskReport.Usage(used: .max, free: .max, size: -1))
        #expect(odd.capacity == .max && odd.percent == 100)
        #expect(Placement.Usage(DiskReport.Usage(used: -5, free: -5, size: 0)).percent == 0)
    }

    @Test func promotionsComeFirstUnlessAPriorityOrdersOtherwise() {
        let plain = Placement(table: table)
        #expect(plain.isPromotion(from: "bronze", to: "gold") && !plain.isPromotion(from: "gold", to: "silver"))
        let ordered = Placement(table: table, policies: ["bronze": LevelPolicy(priority: 5)])
        #expect(ordered.takingOrder(["gold", "silver", "bronze"]) == ["bronze", "gold", "silver"])
    }

    @Test func aDecayingCounterHalvesEveryHalfLifeAndItsScoresOrderContentsWhateverTheirAge() {
        let counter = DecayingCounter(halfLife: .seconds(3600))
        #expect(abs(counter.value(1000, storedAt: 0, now: 3_600_000) - 500) < 1e-9)
        #expect(abs(counter.adding(10, to: 1000, storedAt: 0, now: 7_200_000) - 260) < 1e-9)
        // 100 hits an hour ago are now worth 50: less than 60 hits now, more than 40.
        let old = counter.score(100, at: 0), fresh60 = counter.score(60, at: 3_600_000), fresh40 = counter.score(40, at: 3_600_000)
        #expect(fresh40 < old && old < fresh60)
        #expect(abs(counter.value(ofScore: old, now: 3_600_000) - 50) < 1e-6)
        #expect(counter.score(below: 50, now: 3_600_000) > fresh40)
    }
}
