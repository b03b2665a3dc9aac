import ArgumentParser
import Foundation
import JobQueue
import RedisClient
import RelocatorCore
import RelocatorServices
import SQLStore

extension Relocator {
    struct Plan: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what placement would move now, and each level's fill after it; changes nothing.",
            discussion: """
                Lists the jobs already queued, deferred, retrying or moving, the demotions of levels above their \
                high watermark (coldest first, down to the low watermark), the displacements a hotter content \
                waiting for room would make, and the contents whose decayed hit count (RELOCATOR_HALF_LIFE) fell \
                out of their level. The committer's rebalancer carries out the same plan, a few moves at a time.
                """)

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var logging: LogOptions
        @Flag(help: "Print JSON: {\"moves\": [...], \"levels\": [...]}.") var json = false

        func run() async throws {
            let (url, setting) = try database.resolved()
            if setting == nil, case .sqlite(let path) = url, !FileManager.default.fileExists(atPath: path) { throw DatabaseOptions.noDatabase }
            let redisURL = try runtime.redis()
            let queue = JobQueue(keys: try runtime.keys())
            let halfLife = try runtime.halfLife()
            let plan = try await BlockingExecutor.shared.run {
                let session = RedisJobQueue(queue: queue, redis: RedisConnection(url: redisURL))
                defer { session.close() }
                let sql = try openDatabase(url, access: .readOnly)
                defer { sql.close() }
                return try Planner(queue: session, database: sql, halfLife: halfLife).plan(full: true)
            }
            if json { return try JSONOutput.print(plan) }
            print(Self.text(plan))
        }

        static func text(_ plan: Planner.Plan) -> String {
            var lines: [String] = []
            if plan.moves.isEmpty {
                lines.append("nothing to move")
            } else {
                var moves = TextTable("cid", "file", "move", "kind", "count", "why")
                for move in plan.moves {
                    moves.add([String(move.cid), move.filename ?? "", "\(move.from) → \(move.to)", move.kind.rawValue,
                               move.count.map(\.countText) ?? "", move.reason])
                }
                lines.append(moves.text)
            }
            var levels = TextTable("level", "used", "size", "in", "out", "after", "high/low water")
            for level in plan.levels {
                let water = level.highWater.map { "\($0)%/\(level.lowWater.map { "\($0)%" } ?? "-")" } ?? "-"
                levels.add([level.level, level.used.map(OperatorValues.formatBytes) ?? "unknown",
                            level.size.map(OperatorValues.formatBytes) ?? "unknown", OperatorValues.formatBytes(level.incoming),
                            OperatorValues.formatBytes(level.outgoing), level.projectedPercent.map { String(format: "%.1f%%", $0) } ?? "unknown",
                            water])
            }
            lines += ["", levels.text]
            return lines.joined(separator: "\n")
        }
    }
}
