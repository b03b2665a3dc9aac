import Foundation
@testable import RelocatorServices
import Testing

/// The summary `relocator plan` prints by default, from a plan (no servers).
@Suite struct PlanSummaryTests {
    static func move(_ cid: Int64, _ from: String, _ to: String, _ kind: Planner.Move.Kind, bytes: Int64?) -> Planner.Move {
        var move = Planner.Move(cid: cid, filename: "f\(cid)", from: from, to: to, kind: kind, reason: "why", count: 1, status: nil)
        move.bytes = bytes
        return move
    }

    @Test func movesAreCountedByKindAndByLevelWithTheirBytes() throws {
        let plan = Planner.Plan(
            moves: [Self.move(1, "bronze", "gold", .pending, bytes: 100), Self.move(2, "bronze", "gold", .pending, bytes: 50),
                    Self.move(3, "silver", "gold", .pending, bytes: nil),
                    Self.move(4, "gold", "silver", .watermark, bytes: 1000), Self.move(5, "silver", "gold", .doesNotFit, bytes: nil),
                    Self.move(6, "silver", "gold", .promotion, bytes: 7)],
            levels: [Planner.LevelFill(level: "gold", used: 8000, available: 1000, size: 10000, incoming: 157, outgoing: 1000, highWater: 80, lowWater: 60),
                     Planner.LevelFill(level: "silver", used: nil, size: nil, incoming: 1000, outgoing: 7, highWater: nil, lowWater: nil),
                     Planner.LevelFill(level: "bronze", used: 10, size: 100, incoming: 0, outgoing: 150, highWater: nil, lowWater: nil)])
        let summary = Planner.summary(of: plan, contents: ["gold": 3, "silver": 1_000_000])

        #expect(summary.total == 6)
        // In the order of the kinds, those with moves only; moves without a size count no bytes.
        #expect(summary.kinds.map(\.kind) == [.pending, .watermark, .promotion, .doesNotFit])
        #expect(summary.kinds.map(\.moves) == [3, 1, 1, 1])
        #expect(summary.kinds.map(\.bytes) == [150, 1000, 7, 0])

        let gold = try #require(summary.levels.first)
        #expect(gold.level == "gold" && gold.contents == 3)
        #expect(gold.movesIn == ["pending": 3, "promotion": 1, "does_not_fit": 1])
        #expect(gold.movesOut == ["watermark": 1])
        let usedAfter: Double = 8000 + 157 - 1000
        // The fill as df counts it: used / (used + available), now and after the moves.
        #expect(gold.used == 8000 && gold.available == 1000 && gold.size == 10000)
        #expect(gold.fill == 8000.0 * 100 / 9000)
        #expect(gold.fillAfter == usedAfter * 100 / 9000)
        #expect(gold.highWater == 80 && gold.lowWater == 60 && gold.incoming == 157 && gold.outgoing == 1000)
        let silver = summary.levels[1], bronze = summary.levels[2]
        #expect(silver.contents == 1_000_000 && silver.fill == nil && silver.fillAfter == nil)
        #expect(silver.movesIn == ["watermark": 1])
        #expect(silver.movesOut == ["pending": 1, "promotion": 1, "does_not_fit": 1])
        // A level the database holds nothing on has 0 contents; a report without what is available
        // (none here) gives no fill.
        #expect(bronze.contents == 0 && bronze.movesIn.isEmpty && bronze.movesOut == ["pending": 2])
        #expect(bronze.fill == nil && bronze.fillAfter == nil)
    }

    @Test func theSummaryOfAnEmptyPlanHasItsLevelsAndNoKinds() {
        let plan = Planner.Plan(moves: [], levels: [Planner.LevelFill(level: "gold", used: 1, available: 3, size: 2, incoming: 0, outgoing: 0,
                                                                      highWater: nil, lowWater: nil)])
        let summary = Planner.summary(of: plan, contents: [:])
        #expect(summary.total == 0 && summary.kinds.isEmpty)
        #expect(summary.levels.map(\.level) == ["gold"])
        #expect(summary.levels[0].fill == 25 && summary.levels[0].fillAfter == 25)
    }

    /// Moves out that exceed what a level's report counts as used leave it empty, not below zero;
    /// an empty disk (nothing used, nothing available) has no fill.
    @Test func theFillAfterTheMovesNeverGoesBelowZero() {
        let fills = [Planner.LevelFill(level: "gold", used: 100, available: 900, size: 1000, incoming: 0, outgoing: 500, highWater: nil, lowWater: nil),
                     Planner.LevelFill(level: "silver", used: 0, available: 0, size: 0, incoming: 0, outgoing: 0, highWater: nil, lowWater: nil)]
        #expect(fills[0].projectedPercent == 0 && fills[0].percent == 10)
        #expect(fills[1].percent == nil && fills[1].projectedPercent == nil)
    }

    /// Its JSON uses the snake_case names of the plan's levels, and each kind by its name.
    @Test func theSummaryEncodesWithSnakeCaseKeys() throws {
        let plan = Planner.Plan(moves: [Self.move(1, "bronze", "gold", .doesNotFit, bytes: nil)],
                                levels: [Planner.LevelFill(level: "gold", used: 30, available: 10, size: 100, incoming: 0, outgoing: 0,
                                                           highWater: 90, lowWater: 70)])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(Planner.summary(of: plan, contents: ["gold": 2])), as: UTF8.self)
        #expect(text.contains(#""kinds":[{"bytes":0,"kind":"does_not_fit","moves":1}]"#), "\(text)")
        for key in ["\"contents\":2", "\"available\":10", "\"fill\":75", "\"fill_after\":75", "\"high_water\":90", "\"low_water\":70", "\"moves_in\":{\"does_not_fit\":1}", "\"moves_out\":{}"] {
            #expect(text.contains(key), "\(key) in \(text)")
        }
    }
}
