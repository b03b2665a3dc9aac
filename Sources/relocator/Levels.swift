import ArgumentParser
import Foundation
import RelocatorCore
import SQLStore

extension Relocator {
    struct Levels: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the level table, or seed it with gold/silver/bronze."
        )

        @OptionGroup var database: DatabaseOptions

        @Flag(help: "Write bronze 0–999, silver 1000–9999, gold 10000–99999 into an empty level table.")
        var seedDefault = false

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let db = try database.open()
            defer { db.close() }
            let store = LevelStore(database: db)
            if seedDefault { try store.seed(LevelRange.defaults) }
            let levels = try store.levels()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(levels), as: UTF8.self))
                return
            }
            if levels.isEmpty {
                print("the level table is empty (relocator levels --seed-default writes gold/silver/bronze)")
            }
            for level in levels {
                print("\(level.name)\t\(level.minCounts)\t\(level.maxCounts)")
            }
        }
    }
}
