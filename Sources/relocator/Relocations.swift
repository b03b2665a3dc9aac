import ArgumentParser
import Foundation
import RelocatorApp
import RelocatorCore

extension Relocator {
    struct Relocations: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(abstract: "Show the latest committed moves, newest first.")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var logging: LogOptions
        @Option(parsing: .unconditional, help: "How many, 0 to 10000. (default: 20)", transform: OptionValue.int(0...10_000)) var limit = 20
        @Option(parsing: .unconditional, help: "Only the moves of this content (≥ 1).", transform: OptionValue.int64(1...Int64.max))
        var cid: Int64?
        @Option(parsing: .unconditional, help: "Start below the move this cursor names (the next cursor a page printed). (default: the first page)",
                transform: OptionValue.int64(1...Int64.max))
        var cursor: Int64?
        @Flag(help: "Print JSON: a list of {moved_at, job_id, cid, filename, from, to, bytes, checksum, worker, attempts, gen}.")
        var json = false

        /// A relocation row with the content's filename.
        struct Row: Encodable {
            var relocation: Relocation
            var filename: String?

            enum CodingKeys: String, CodingKey { case filename }

            func encode(to encoder: any Encoder) throws {
                try relocation.encode(to: encoder)
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(filename, forKey: .filename)
            }
        }

        func run() async throws {
            let service = try makeCommandService(database: database, access: .readOnly)
            defer { service.close() }
            let page = try await service.relocationRows(cid: cid, before: cursor, limit: limit)
            let relocations = page.rows
            let rows = relocations.map { Row(relocation: $0, filename: page.filenames[$0.cid]) }
            if json { return try JSONOutput.print(rows) }
            var table = TextTable("moved_at", "job_id", "cid", "filename", "from", "to", "bytes", "checksum", "worker", "attempts")
            for row in rows {
                let r = row.relocation
                table.add([r.movedAt, r.jobID, String(r.cid), row.filename.cell, r.from, r.to, String(r.bytes),
                           Self.short(r.checksum), r.worker, String(r.attempts)])
            }
            table.print()
            // The total and the next page when there is one (on standard error: the table stays a table).
            if let next = page.next {
                FileHandle.standardError.write(Data("\(relocations.count) of \(page.total) moves shown; next page: relocator relocations --limit \(limit)\(cid.map { " --cid \($0)" } ?? "") --cursor \(next)\n".utf8))
            }
        }

        /// `xxh128:0123456789abcdef…`: enough to tell two apart.
        static func short(_ checksum: String) -> String {
            checksum.count > 24 ? String(checksum.prefix(23)) + "…" : checksum
        }
    }
}
