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
        #expect(placement.admission(into: "gold", usage: .init(used: 99, size: 100), adding: 10) == nil)
        #expect(placement.excess(of: "gold", usage: .init(used: 99, size: 100)) == nil)
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
        let usage = Placement.Usage(used: 85, size: 100)
        #expect(placement.admission(into: "gold", usage: usage, adding: 4) == nil)
        #expect(placement.admission(into: "gold", usage: usage, adding: 6)?.contains("high watermark 90") == true)
        #expect(placement.admission(into: "gold", usage: usage, adding: 2, inFlight: 4)?.contains("91.0 %") == true)
        #expect(placement.excess(of: "gold", usage: usage) == nil)
        #expect(placement.excess(of: "gold", usage: .init(used: 95, size: 100)) == 25)
        #expect(placement.levelBelow("gold") == "silver" && placement.levelBelow("bronze") == nil)
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
