import ArgumentParser
import Foundation
import RelocatorCore
import RelocatorServices

extension Relocator {
    struct Plan: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what placement would move now, and each level's fill after it; changes nothing.",
            discussion: """
                By default a summary: the moves by kind with their bytes, and per level its contents, its fill now \
                and after the moves (used / (used + available), as df prints it, from the workers' disk reports; the \
                watermarks count the same), and the moves into and out of it by kind. --details also lists every move: the \
                jobs already queued, deferred, retrying or moving, the demotions of levels above their high watermark \
                (coldest first, down to the low watermark), the displacements a hotter content waiting for room would \
                make, and the contents whose decayed hit count (RELOCATOR_HALF_LIFE) fell out of their level. The \
                committer's rebalancer carries out the same plan, a few moves at a time.
                """)

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var logging: LogOptions
        @Flag(help: "Also list every planned move (cid, file, from → to, kind, count, why).") var details = false
        @Flag(help: "Print JSON: {\"total\": N, \"kinds\": [...], \"levels\": [...]}, and with --details \"moves\": [...].") var json = false

        func run() async throws {
            let service = try makeCommandService(runtime, database: database, access: .readOnly)
            defer { service.close() }
            let plan = try await service.plan(full: true)
            let contents = try await service.contentsByLevel()
            let summary = Planner.summary(of: plan, contents: contents)
            if json { return try JSONOutput.print(Report(summary: summary, moves: details ? plan.moves : nil)) }
            print(Self.text(summary, moves: details ? plan.moves : nil))
        }

        /// The JSON: the summary's fields, and the moves with --details.
        struct Report: Encodable {
            var summary: Planner.Summary
            var moves: [Planner.Move]?

            enum CodingKeys: String, CodingKey { case total, kinds, levels, moves }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(summary.total, forKey: .total)
                try container.encode(summary.kinds, forKey: .kinds)
                try container.encode(summary.levels, forKey: .levels)
                try container.encodeIfPresent(moves, forKey: .moves)
            }
        }

        static func text(_ summary: Planner.Summary, moves: [Planner.Move]?) -> String {
            var lines: [String] = []
            if let moves, !moves.isEmpty {
                var table = TextTable("cid", "file", "move", "kind", "count", "why")
                for move in moves {
                    table.add([String(move.cid), move.filename ?? "", "\(move.from) → \(move.to)", move.kind.rawValue,
                               move.count.map(\.countText) ?? "", move.reason])
                }
                lines += [table.text, ""]
            }
            if summary.total == 0 {
                lines.append("nothing to move")
            } else {
                lines.append("\(summary.total) move\(summary.total == 1 ? "" : "s") planned" + (moves == nil ? " (--details lists each)" : ""))
                var kinds = TextTable("kind", "moves", "bytes")
                for kind in summary.kinds {
                    kinds.add([kind.kind.rawValue, String(kind.moves), OperatorValues.formatBytes(kind.bytes)])
                }
                lines.append(kinds.text)
            }
            var levels = TextTable("level", "contents", "used", "available", "fill", "in", "out", "fill after", "high/low water",
                                   "moves in", "moves out")
            func percent(_ value: Double?) -> String { value.map { String(format: "%.1f%%", $0) } ?? "unknown" }
            for level in summary.levels {
                let water = level.highWater.map { "\($0)%/\(level.lowWater.map { "\($0)%" } ?? "-")" } ?? "-"
                levels.add([level.level, String(level.contents), level.used.map(OperatorValues.formatBytes) ?? "unknown",
                            level.available.map(OperatorValues.formatBytes) ?? "unknown", percent(level.fill),
                            OperatorValues.formatBytes(level.incoming), OperatorValues.formatBytes(level.outgoing), percent(level.fillAfter),
                            water, byKind(level.movesIn), byKind(level.movesOut)])
            }
            lines += ["", levels.text]
            for level in summary.levels {
                guard let below = level.sharesFilesystemWith else { continue }
                lines.append("\(level.level) is not shed: its directory is on the same filesystem as \(below)'s, so a move down frees nothing there")
            }
            return lines.joined(separator: "\n")
        }

        /// `3 pending, 1 watermark`, in the order of the kinds; `-` for none.
        static func byKind(_ counts: [String: Int]) -> String {
            let listed = Planner.Move.Kind.allCases.compactMap { kind in counts[kind.rawValue].map { "\($0) \(kind.rawValue)" } }
            return listed.isEmpty ? "-" : listed.joined(separator: ", ")
        }
    }
}
