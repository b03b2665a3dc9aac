import Foundation
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

/// `LevelTable.validate`: what an edit of the level table must not leave behind.
@Suite struct LevelTableValidationTests {
    func range(_ name: String, _ min: Int64, _ max: Int64) -> LevelRange { LevelRange(name: name, minCounts: min, maxCounts: max) }

    @Test func theDefaultTableAndTablesWithSharedBoundariesAreSound() {
        #expect(LevelTable.validate(LevelRange.defaults).isEmpty)
        #expect(LevelTable.validate([range("bronze", 0, 1000), range("silver", 1000, 2000), range("gold", 2000, 2000)]).isEmpty)
        #expect(LevelTable.validate([]).isEmpty)
        // Order of the rows does not matter.
        #expect(LevelTable.validate(LevelRange.defaults.reversed()).isEmpty)
    }

    @Test func eachKindOfProblemIsOneLine() {
        let problems = LevelTable.validate([
            range("bronze", 0, 999), range("silver", 1500, 9999), range("gold", 9000, 99999),
            range("odd", 50, 10), range("neg", -5, -1), range("bronze", 0, 999),
        ])
        #expect(problems == [
            .minAboveMax(level: "odd", min: 50, max: 10),
            .negative(level: "neg", column: "min_counts", value: -5),
            .negative(level: "neg", column: "max_counts", value: -1),
            .duplicate(level: "bronze"),
            .gap(below: "bronze", above: "silver", from: 1000, to: 1499),
            .overlap(lower: "silver", upper: "gold", from: 9000, to: 9999),
        ])
        #expect(problems.map(\.description).contains("counts 1000–1499 belong to no level (between 'bronze' and 'silver')"))
        #expect(problems.map(\.description).contains("levels 'silver' and 'gold' overlap on counts 9000–9999 (they may share one boundary count only)"))
        #expect(problems.map(\.description).contains("level 'odd': min_counts 50 is above max_counts 10"))
        #expect(problems.map(\.description).contains("level 'neg': min_counts -5 is negative"))
        #expect(problems.map(\.description).contains("level 'bronze' appears more than once"))
        #expect(problems.allSatisfy { !$0.description.contains("\n") })
    }

    @Test func aOneCountGapAndALevelInsideAnotherAreFound() {
        #expect(LevelTable.validate([range("a", 0, 9), range("b", 11, 20)]) == [.gap(below: "a", above: "b", from: 10, to: 10)])
        #expect(LevelTable.validate([range("a", 0, 9), range("b", 11, 20)]).first?.description == "count 10 belongs to no level (between 'a' and 'b')")
        #expect(LevelTable.validate([range("wide", 0, 100), range("inner", 10, 20), range("next", 100, 200)])
            == [.overlap(lower: "wide", upper: "inner", from: 10, to: 20)])
    }

    @Test func applyingAnEditReplacesOrAddsTheLevel() {
        let edited = LevelTable.applying(range("silver", 1000, 19999), to: LevelRange.defaults)
        #expect(edited.map(\.name) == ["bronze", "silver", "gold"])
        #expect(LevelTable.validate(edited) == [.overlap(lower: "silver", upper: "gold", from: 10000, to: 19999)])
        let added = LevelTable.applying(range("platinum", 100_000, 500_000), to: LevelRange.defaults)
        #expect(added.map(\.name) == ["bronze", "silver", "gold", "platinum"])
        #expect(LevelTable.validate(added).isEmpty)
    }

    @Test func levelRangesEncodeWithSnakeCaseKeys() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(range("gold", 10000, 99999)), as: UTF8.self)
        #expect(json == #"{"max_counts":99999,"min_counts":10000,"name":"gold"}"#)
        #expect(try JSONDecoder().decode(LevelRange.self, from: Data(json.utf8)) == range("gold", 10000, 99999))
    }
}

/// `LevelPolicy`: a pure value, its limits and its edits.
@Suite struct LevelPolicyTests {
    @Test func aPolicyWithinItsLimitsHasNoProblems() {
        #expect(LevelPolicy().problems(level: "gold").isEmpty)
        #expect(LevelPolicy(highWater: 100, lowWater: 0, minResidency: 0, hysteresis: 100, maxMoves: 0, bandwidth: 0, priority: -7)
            .problems(level: "gold").isEmpty)
    }

    @Test func eachSettingOutOfItsLimitsIsOneLine() {
        let policy = LevelPolicy(highWater: 101, lowWater: -1, minResidency: -5, hysteresis: 200, maxMoves: -1, bandwidth: -10)
        #expect(policy.problems(level: "gold") == [
            "level 'gold': high_water 101 is not a percentage from 0 to 100",
            "level 'gold': low_water -1 is not a percentage from 0 to 100",
            "level 'gold': hysteresis 200 is not a percentage from 0 to 100",
            "level 'gold': min_residency -5 is negative",
            "level 'gold': max_moves -1 is negative",
            "level 'gold': bandwidth -10 is negative",
        ])
        #expect(LevelPolicy(highWater: 70, lowWater: 80).problems(level: "ssd") == ["level 'ssd': low_water 80 is above high_water 70"])
    }

    @Test func anEditChangesOnlyTheSettingsItNames() {
        let policy = LevelPolicy(highWater: 90, lowWater: 70, priority: 3)
        let edit = LevelPolicy.Edit(lowWater: .set(60), bandwidth: .set(1_000_000), priority: .clear)
        #expect(edit.applied(to: policy) == LevelPolicy(highWater: 90, lowWater: 60, bandwidth: 1_000_000))
        #expect(LevelPolicy.Edit().applied(to: policy) == policy)
    }

    @Test func policiesEncodeWithTheColumnNames() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let policy = LevelPolicy(highWater: 90, lowWater: 75, minResidency: 3600, hysteresis: 5, maxMoves: 4, bandwidth: 1000, priority: 1)
        #expect(String(decoding: try encoder.encode(policy), as: UTF8.self)
            == #"{"bandwidth":1000,"high_water":90,"hysteresis":5,"low_water":75,"max_moves":4,"min_residency":3600,"priority":1}"#)
        #expect(String(decoding: try encoder.encode(LevelPolicy(priority: 2)), as: UTF8.self) == #"{"priority":2}"#)
    }
}
