import RelocatorCore
import Testing

/// The residency rule (helpers.lua's residencyDue is its twin in the scripts).
@Suite struct ResidencyTests {
    @Test func aContentMovedWithinTheWindowWaitsUntilItEnds() {
        #expect(Residency.due(residency: 60_000, moved: 1_000, now: 30_000) == 61_000)
    }

    @Test func theWindowEndsAtItsLastMillisecond() {
        #expect(Residency.due(residency: 60_000, moved: 1_000, now: 60_999) == 61_000)
        #expect(Residency.due(residency: 60_000, moved: 1_000, now: 61_000) == nil)
    }

    @Test func noResidencyOrNoMoveMeansNoWait() {
        #expect(Residency.due(residency: 0, moved: 1_000, now: 1_001) == nil)
        #expect(Residency.due(residency: -5, moved: 1_000, now: 1_001) == nil)
        #expect(Residency.due(residency: 60_000, moved: nil, now: 0) == nil)
    }

    @Test func aMoveStampedAtTheExtremesTrapsNothing() {
        #expect(Residency.due(residency: Int64.max, moved: Int64.max, now: 0) == Int64.max)
        #expect(Residency.due(residency: 1, moved: Int64.min, now: 0) == nil)
    }

    @Test func thePlacementsResidencyIsTheSameRuleInSeconds() {
        let placement = Placement(table: LevelTable(LevelRange.defaults), policies: ["gold": LevelPolicy(minResidency: 60)])
        #expect(placement.residencyEnds(level: "gold", lastMoved: 1_000, now: 2_000) == Residency.due(residency: 60_000, moved: 1_000, now: 2_000))
        #expect(placement.residencyEnds(level: "silver", lastMoved: 1_000, now: 2_000) == nil)
    }
}
