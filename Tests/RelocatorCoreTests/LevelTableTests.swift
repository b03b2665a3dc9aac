import RelocatorCore
import Testing

@Suite struct LevelTableTests {
    let table = LevelTable(LevelRange.defaults)

    @Test func aCountFallsInTheRangeThatHoldsIt() {
        #expect(table.choose(count: 0)?.level == "bronze")
        #expect(table.choose(count: 999)?.level == "bronze")
        #expect(table.choose(count: 1000)?.level == "silver")
        #expect(table.choose(count: 1964) == LevelTable.Choice(level: "silver", raiseMaxCounts: nil))
        #expect(table.choose(count: 99999)?.level == "gold")
    }

    @Test func aCountAboveTheTopRaisesItsMaximum() {
        #expect(table.choose(count: 250_000) == LevelTable.Choice(level: "gold", raiseMaxCounts: 250_000))
    }

    @Test func aCountInAGapOrBelowEveryLevelHasNoLevel() {
        let gappy = LevelTable([LevelRange(name: "low", minCounts: 10, maxCounts: 20),
                                LevelRange(name: "high", minCounts: 30, maxCounts: 40)])
        #expect(gappy.choose(count: 25) == nil)
        #expect(gappy.choose(count: 5) == nil)
        #expect(LevelTable([]).choose(count: 1) == nil)
    }

    @Test func addingALevelIsARowNotACodeChange() {
        let four = LevelTable(LevelRange.defaults + [LevelRange(name: "platinum", minCounts: 100_000, maxCounts: 1_000_000)])
        #expect(four.choose(count: 150_000)?.level == "platinum")
        #expect(four.choose(count: 5_000_000) == LevelTable.Choice(level: "platinum", raiseMaxCounts: 5_000_000))
    }

    @Test func onASharedBoundaryTheHigherLevelWins() {
        let overlapping = LevelTable([LevelRange(name: "bronze", minCounts: 0, maxCounts: 1000),
                                      LevelRange(name: "silver", minCounts: 1000, maxCounts: 2000)])
        #expect(overlapping.choose(count: 1000)?.level == "silver")
    }
}
