import ArgumentParser
import FileMover
import Foundation
import RelocatorApp
import RelocatorCore

extension Relocator {
    struct Levels: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or edit the level table: count ranges and placement policy.",
            subcommands: [Show.self, SetLevel.self, Init.self], defaultSubcommand: Show.self)

        /// One level as `levels` shows it: its range and its policy (unset settings are null).
        struct Row: Encodable {
            var range: LevelRange
            var policy: LevelPolicy

            enum CodingKeys: String, CodingKey {
                case name, minCounts = "min_counts", maxCounts = "max_counts", highWater = "high_water", lowWater = "low_water"
                case minResidency = "min_residency", hysteresis, maxMoves = "max_moves", bandwidth, priority
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(range.name, forKey: .name)
                try container.encode(range.minCounts, forKey: .minCounts)
                try container.encode(range.maxCounts, forKey: .maxCounts)
                try container.encode(policy.highWater, forKey: .highWater)
                try container.encode(policy.lowWater, forKey: .lowWater)
                try container.encode(policy.minResidency, forKey: .minResidency)
                try container.encode(policy.hysteresis, forKey: .hysteresis)
                try container.encode(policy.maxMoves, forKey: .maxMoves)
                try container.encode(policy.bandwidth, forKey: .bandwidth)
                try container.encode(policy.priority, forKey: .priority)
            }
        }

        static func table(_ rows: [Row]) -> TextTable {
            var table = TextTable("level", "min_counts", "max_counts", "high_water", "low_water", "min_residency", "hysteresis",
                                  "max_moves", "bandwidth", "priority")
            for row in rows {
                let policy = row.policy
                table.add([
                    row.range.name, String(row.range.minCounts), String(row.range.maxCounts),
                    policy.highWater.map { "\($0)%" }.cell, policy.lowWater.map { "\($0)%" }.cell,
                    policy.minResidency.map(OperatorValues.formatDuration(seconds:)).cell, policy.hysteresis.map { "\($0)%" }.cell,
                    policy.maxMoves.cell, policy.bandwidth.map { OperatorValues.formatBytes($0) + "/s" }.cell, policy.priority.cell,
                ])
            }
            return table
        }

        struct Show: AsyncParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                abstract: "Show each level's count range and placement policy (the default).")

            @OptionGroup var database: DatabaseOptions
            @OptionGroup var logging: LogOptions

            @Flag(help: "Write bronze 0–999, silver 1000–9999, gold 10000–99999 into an empty level table first.")
            var seedDefault = false

            @Flag(help: "Print JSON: a list of {name, min_counts, max_counts, high_water, low_water, min_residency (seconds), hysteresis, max_moves, bandwidth (bytes/s), priority}.")
            var json = false

            func run() async throws {
                let service = try makeCommandService(database: database, access: seedDefault ? .readWrite : .readOnly)
                defer { service.close() }
                let settings = try await service.levelSettings(seeding: seedDefault ? LevelRange.defaults : nil)
                if seedDefault && !json { print("seeded bronze 0–999, silver 1000–9999, gold 10000–99999") }
                let rows = settings.map { Row(range: $0.range, policy: $0.policy) }
                if json { return try JSONOutput.print(rows) }
                if rows.isEmpty {
                    print("the level table is empty (relocator levels --seed-default writes bronze, silver and gold)")
                    return
                }
                Levels.table(rows).print()
            }
        }

        struct SetLevel: AsyncParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                commandName: "set",
                abstract: "Set a level's count range or placement policy (adds the level if it is new).",
                discussion: """
                    The range must leave the table without gaps or overlaps (neighbours may share one boundary count), \
                    unless --force. Policy settings take `none` to clear them. Durations: 90s, 15m, 1h, 7d; sizes: \
                    1048576, 200MiB, 1GB.
                    """)

            @OptionGroup var database: DatabaseOptions
            @OptionGroup var logging: LogOptions

            @Argument(help: "The level's name (letters, digits, '_' and '-').")
            var level: String

            @Option(parsing: .unconditional, help: "The lowest count of the level, 0 to 2^53 − 1 (9007199254740991).", transform: OptionValue.int64(CountBound.range))
            var min: Int64?

            @Option(parsing: .unconditional, help: "The highest count of the level, 0 to 2^53 − 1 (9007199254740991): a count is never higher.",
                    transform: OptionValue.int64(CountBound.range))
            var max: Int64?

            @Flag(help: "Apply a range that leaves gaps or overlaps in the table.")
            var force = false

            @Option(parsing: .unconditional, help: "Disk usage (percent, 0 to 100) above which the level sheds contents, or none.",
                    transform: OptionValue.percent)
            var highWater: LevelPolicy.Change<Int>?

            @Option(parsing: .unconditional, help: "Disk usage (percent, 0 to 100) to shed down to, not above --high-water, or none.",
                    transform: OptionValue.percent)
            var lowWater: LevelPolicy.Change<Int>?

            @Option(parsing: .unconditional, help: "How long a content stays on the level before it may move again (90s, 1h, 7d), or none.",
                    transform: OptionValue.duration)
            var minResidency: LevelPolicy.Change<Int64>?

            @Option(parsing: .unconditional, help: "Percent (0 to 100) a count must pass a threshold by before a move, or none.",
                    transform: OptionValue.percent)
            var hysteresis: LevelPolicy.Change<Int>?

            @Option(parsing: .unconditional, help: "Most moves into the level at once, across all workers, or none.", transform: OptionValue.count)
            var maxMoves: LevelPolicy.Change<Int>?

            @Option(parsing: .unconditional, help: "Bytes per second that copies into the level may write, across all workers (200MiB, 1GB), or none.",
                    transform: OptionValue.bandwidth)
            var bandwidth: LevelPolicy.Change<Int64>?

            @Option(parsing: .unconditional, help: "Order among levels competing for work (a whole number), or none.",
                    transform: OptionValue.priority)
            var priority: LevelPolicy.Change<Int>?

            var edit: LevelPolicy.Edit {
                LevelPolicy.Edit(highWater: highWater ?? .keep, lowWater: lowWater ?? .keep, minResidency: minResidency ?? .keep,
                                 hysteresis: hysteresis ?? .keep, maxMoves: maxMoves ?? .keep, bandwidth: bandwidth ?? .keep,
                                 priority: priority ?? .keep)
            }

            var changesPolicy: Bool { edit != LevelPolicy.Edit() }

            func validate() throws {
                guard LevelDirectories.isValidName(level) else {
                    throw ValidationError("level name '\(level.prefix(80))': use letters, digits, '_' and '-' (at most 64)")
                }
                guard min != nil || max != nil || changesPolicy else {
                    throw ValidationError("nothing to set: give --min/--max or a policy option")
                }
                if force && min == nil && max == nil { throw ValidationError("--force goes with --min or --max") }
            }

            func run() async throws {
                let service = try makeCommandService(database: database, access: .readWrite)
                defer { service.close() }
                let change = try await service.setLevel(level, min: min, max: max, force: force, edit: edit)
                if let result = change.range {
                    let range = result.range
                    if let previous = result.previous {
                        print("\(level): counts \(range.minCounts)–\(range.maxCounts) (were \(previous.minCounts)–\(previous.maxCounts))")
                    } else {
                        print("\(level): added with counts \(range.minCounts)–\(range.maxCounts)")
                    }
                    for problem in result.problems { print("warning (applied with --force): \(problem)") }
                }
                if let policy = change.policy {
                    let row = Levels.table([Row(range: LevelRange(name: level, minCounts: 0, maxCounts: 0), policy: policy)])
                    let values = zip(row.header, row.rows[0]).dropFirst(3).map { "\($0.0) \($0.1)" }
                    print("\(level): policy \(values.joined(separator: ", "))")
                }
            }
        }

        struct Init: AsyncParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                commandName: "init",
                abstract: "Start a level's directory afresh: create its .relocator/ (a new or replaced disk).",
                discussion: """
                    A worker or reconcile creates .relocator/ by itself in a level never seen in use before. A level seen in \
                    use whose directory has no .relocator/ is taken for a disk that is not mounted (a bare mountpoint): \
                    workers move nothing into or out of it and reconcile leaves it alone, until the disk is mounted again \
                    — or until this command creates .relocator/ there, for a disk replaced by an empty one. Needs the \
                    level's directory (RELOCATOR_LEVELS or --level-dirs) and Redis. A worker holding that very directory \
                    takes the level back into service within a heartbeat; a worker started before the disk was mounted \
                    must be restarted.
                    """)

            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var logging: LogOptions

            @Argument(help: "The level's name, as in RELOCATOR_LEVELS.")
            var level: String

            @Option(help: "level=directory pairs, e.g. gold=/data/ssd,silver=/data/hdd (default: $RELOCATOR_LEVELS).")
            var levelDirs: String?

            func run() async throws {
                let (directories, setting) = try runtime.levelDirectories(flag: levelDirs)
                guard let place = directories.place(of: level) else {
                    throw CommandFailure("level '\(level.prefix(80))' has no directory in \(setting), which names \(directories.names.joined(separator: ", "))")
                }
                // (The other levels' layout is checked as far as their disks answer.)
                let silent = try verifyAnsweringLevelLayout(directories, setting: setting, within: DiskLooks.requestPatience)
                if let why = silent[level] {
                    throw CommandFailure("level \(level) (\(Shown.text(place.directory))): \(why); nothing done")
                }
                let root = try LevelRoot(place)
                let had = try root.hasReservedDirectory()
                try root.initialise()
                let service = try makeCommandService(runtime, access: .readOnly, requireDatabase: false)
                defer { service.close() }
                try await service.recordLevelsSeen([level])
                if had {
                    print("level \(level) (\(Shown.text(place.directory))) has its \(ReservedDirectory.name)/ already; recorded as in use")
                } else {
                    print("level \(level) (\(Shown.text(place.directory))): created \(ReservedDirectory.name)/; workers and reconcile use the level from now on")
                }
            }
        }
    }
}
