import Foundation
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// Editing the level table safely, the original raise rule, and level policies.
@Suite struct LevelStoreTests {
    func withLevels(_ backend: Backend, _ body: (LevelStore) throws -> Void) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let db = try test.open()
        defer { db.close() }
        try Migrator(database: db, migrations: test.migrations()).migrate()
        let store = LevelStore(database: db)
        try store.seed(LevelRange.defaults)
        try body(store)
    }

    @Test(arguments: Backend.allCases)
    func anEditThatKeepsTheTableSoundIsApplied(backend: Backend) throws {
        try withLevels(backend) { store in
            // Move the silver/gold boundary: both rows change, each in its own sound step.
            let first = try store.setRange(level: "gold", min: 9999, max: 99999)
            #expect(first == LevelRangeEdit(previous: LevelRange(name: "gold", minCounts: 10000, maxCounts: 99999),
                                            range: LevelRange(name: "gold", minCounts: 9999, maxCounts: 99999), problems: []))
            // Adding a level above the top is a row.
            let added = try store.setRange(level: "platinum", min: 100_000, max: 1_000_000)
            #expect(added.previous == nil)
            #expect(try store.levels().map(\.name) == ["bronze", "silver", "gold", "platinum"])
            #expect(try store.levels().last == LevelRange(name: "platinum", minCounts: 100_000, maxCounts: 1_000_000))
        }
    }

    @Test(arguments: Backend.allCases)
    func anEditThatWouldBreakTheTableChangesNothingUnlessForced(backend: Backend) throws {
        try withLevels(backend) { store in
            let refused = #expect(throws: SQLError.self) { try store.setRange(level: "silver", min: 1500, max: 12000) }
            #expect(refused?.code == .invalidLevelTable)
            #expect(refused?.message == "level 'silver' 1500–12000 would leave the level table with 2 problems: counts 1000–1499 belong to no level (between 'bronze' and 'silver'); levels 'silver' and 'gold' overlap on counts 10000–12000 (they may share one boundary count only); nothing changed (--force applies it anyway)")
            #expect(try store.levels() == LevelRange.defaults)

            let negative = #expect(throws: SQLError.self) { try store.setRange(level: "bronze", min: -1, max: 999) }
            #expect(negative?.message.contains("level 'bronze': min_counts -1 is negative") == true)
            let badName = #expect(throws: SQLError.self) { try store.setRange(level: "gold level", min: 1, max: 2) }
            #expect(badName?.code == .invalidLevelTable)

            // A level named as another in other case is a look-alike (the same row on MariaDB).
            let lookAlike = #expect(throws: SQLError.self) { try store.setRange(level: "Gold", min: 100_000, max: 200_000, force: true) }
            #expect(lookAlike?.code == .invalidLevelTable)
            #expect(lookAlike?.message == "level 'Gold' differs from the level 'gold' only in case; use 'gold', or a name of its own; nothing changed")
            #expect(try store.levels() == LevelRange.defaults)

            let forced = try store.setRange(level: "silver", min: 1500, max: 12000, force: true)
            #expect(forced.problems.count == 2)
            #expect(try store.levels().first { $0.name == "silver" } == LevelRange(name: "silver", minCounts: 1500, maxCounts: 12000))
        }
    }

    @Test(arguments: Backend.allCases)
    func raisingMaxCountsOnlyRaisesAndSaysWhatItFound(backend: Backend) throws {
        try withLevels(backend) { store in
            #expect(try store.raiseMaxCounts(level: "gold", to: 250_000) == MaxCountsRaise(level: "gold", changed: true, previous: 99999))
            #expect(try store.raiseMaxCounts(level: "gold", to: 150_000) == MaxCountsRaise(level: "gold", changed: false, previous: 250_000))
            #expect(try store.raiseMaxCounts(level: "gold", to: 250_000) == MaxCountsRaise(level: "gold", changed: false, previous: 250_000))
            #expect(try store.raiseMaxCounts(level: "nope", to: 5) == MaxCountsRaise(level: "nope", changed: false, previous: nil))
            #expect(try store.levels().last?.maxCounts == 250_000)
            // The old call stays as it was.
            try ContentStore(database: store.database).raiseMaxCounts(level: "gold", to: 300_000)
            #expect(try store.levels().last?.maxCounts == 300_000)
        }
    }

    @Test(arguments: Backend.allCases)
    func aPolicyIsSetFieldByFieldAndAFieldCanBeCleared(backend: Backend) throws {
        try withLevels(backend) { store in
            #expect(try store.policies().isEmpty)
            let set = try store.setPolicy(level: "gold", LevelPolicy.Edit(highWater: .set(90), lowWater: .set(75), minResidency: .set(3600),
                                                                          bandwidth: .set(104_857_600)))
            #expect(set == LevelPolicy(highWater: 90, lowWater: 75, minResidency: 3600, bandwidth: 104_857_600))
            // Only the fields named change; a cleared one becomes NULL.
            try store.setPolicy(level: "gold", LevelPolicy.Edit(minResidency: .clear, hysteresis: .set(5), maxMoves: .set(4), priority: .set(-2)))
            try store.setPolicy(level: "bronze", LevelPolicy.Edit(priority: .set(1)))
            #expect(try store.policies() == [
                "gold": LevelPolicy(highWater: 90, lowWater: 75, hysteresis: 5, maxMoves: 4, bandwidth: 104_857_600, priority: -2),
                "bronze": LevelPolicy(priority: 1),
            ])
        }
    }

    @Test(arguments: Backend.allCases)
    func anUnsoundPolicyOrAnUnknownLevelChangesNothing(backend: Backend) throws {
        try withLevels(backend) { store in
            try store.setPolicy(level: "gold", LevelPolicy.Edit(highWater: .set(90)))
            let inverted = #expect(throws: SQLError.self) { try store.setPolicy(level: "gold", LevelPolicy.Edit(lowWater: .set(95))) }
            #expect(inverted?.code == .invalidPolicy)
            #expect(inverted?.message == "level 'gold': low_water 95 is above high_water 90; nothing changed")
            let unknown = #expect(throws: SQLError.self) { try store.setPolicy(level: "glod", LevelPolicy.Edit(priority: .set(1))) }
            #expect(unknown?.message == "level 'glod' is not in the level table")
            #expect(try store.policies() == ["gold": LevelPolicy(highWater: 90)])
            // The table's own checks hold against any other writer.
            let direct = #expect(throws: SQLError.self) {
                try store.database.execute("INSERT INTO level_policy (content_level, high_water) VALUES (\("silver"), \(101))")
            }
            #expect(direct?.code == .constraintViolation)
        }
    }
}
