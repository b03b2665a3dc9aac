import ArgumentParser
import Foundation
import RelocatorCore
import SQLStore

extension Relocator {
    struct Contents: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List contents, or add them to the database (the original system filled this table itself).",
            subcommands: [List.self, Add.self, Import.self])

        /// A content as given by an operator: a positive cid, a filename that stays inside its level
        /// directory, a level the level table has.
        static func checked(cid: Int64, filename: String, level: String, levels: [String]) -> Result<Content, CommandFailure> {
            guard cid > 0 else { return .failure(CommandFailure("cid \(cid) is not a positive whole number")) }
            do {
                _ = try Filename(filename)
            } catch {
                return .failure(CommandFailure("filename '\(filename.prefix(80))': \(error)"))
            }
            do {
                try Levels.requireKnown(level, in: levels)
            } catch let failure as CommandFailure {
                return .failure(failure)
            } catch {
                return .failure(CommandFailure("\(error)"))
            }
            return .success(Content(cid: cid, filename: filename, level: level))
        }

        /// A content in JSON, with `update_time` null when it was never recorded.
        struct Row: Encodable {
            var content: Content

            enum CodingKeys: String, CodingKey { case cid, filename, level, updateTime = "update_time" }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(content.cid, forKey: .cid)
                try container.encode(content.filename, forKey: .filename)
                try container.encode(content.level, forKey: .level)
                try container.encode(content.updateTime, forKey: .updateTime)
            }
        }

        struct List: ParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(abstract: "Show contents: cid, filename, level and when the level last changed.")

            @OptionGroup var database: DatabaseOptions
            @OptionGroup var logging: LogOptions
            @Option(help: "Only the contents of this level.") var level: String?
            @Option(parsing: .unconditional, help: "How many, 0 to 100000, in cid order.", transform: OptionValue.int(0...100_000))
            var limit = 100
            @Option(parsing: .unconditional, help: "How many to skip first, ≥ 0.", transform: OptionValue.int(0...Int(Int32.max)))
            var offset = 0
            @Flag(help: "Print JSON: a list of {cid, filename, level, update_time}.") var json = false

            func run() throws {
                let db = try database.open(.readOnly)
                defer { db.close() }
                if let level { try Levels.requireKnown(level, in: try Levels.names(db)) }
                let rows = try ContentStore(database: db).contents(limit: limit, offset: offset, level: level)
                if json { return try JSONOutput.print(rows.map(Row.init)) }
                var table = TextTable("cid", "filename", "level", "update_time")
                for row in rows { table.add([String(row.cid), row.filename, row.level, row.updateTime.cell]) }
                table.print()
            }
        }

        struct Add: ParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(abstract: "Add one content, or change its filename and level.")
            @OptionGroup var database: DatabaseOptions
            @OptionGroup var logging: LogOptions
            @Option(parsing: .unconditional, help: "The content's id, a whole number ≥ 1.", transform: OptionValue.int64(1...Int64.max))
            var cid: Int64
            @Option(help: "The file's path relative to its level directory (no leading /, no '..').")
            var filename: String
            @Option(help: "The level the file is on now; it must be in the level table.")
            var level: String

            func run() throws {
                let db = try database.open(.readWrite)
                defer { db.close() }
                let content = try Contents.checked(cid: cid, filename: filename, level: level, levels: try Levels.names(db)).get()
                let store = ContentStore(database: db)
                let before = try store.content(cid: cid)
                try store.put(content)
                switch before {
                case nil:
                    print("added cid \(cid): \(filename) on \(level)")
                case let old? where old.filename == filename && old.level == level:
                    print("cid \(cid) unchanged: \(filename) on \(level)")
                case let old?:
                    var changes: [String] = []
                    if old.filename != filename { changes.append("filename \(old.filename) → \(filename)") }
                    if old.level != level { changes.append("level \(old.level) → \(level)") }
                    print("changed cid \(cid): \(changes.joined(separator: ", "))")
                }
            }
        }

        struct Import: ParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add or change contents from CSV: cid,filename,level.",
                discussion: """
                    An optional header line (cid,filename,level, in any order) names the columns; fields may be quoted \
                    ("a,b.mp4", "say ""hi"".mp4"), and a quoted filename keeps its spaces; blank lines and lines starting with # are skipped. A bad line (a malformed field, an \
                    unsafe filename, a level the table does not have, a filename given to two cids) is reported with its \
                    line number, and nothing is imported unless --skip-bad. All good lines go in one transaction.
                    """)
            @OptionGroup var database: DatabaseOptions
            @OptionGroup var logging: LogOptions
            @Argument(help: "A CSV file; standard input when absent or '-'.") var file: String?
            @Flag(help: "Import the good lines and report the bad ones, rather than refusing the whole file.") var skipBad = false

            func run() throws {
                let name = file ?? "-"
                let input = CSVInput(try InputFile.read(name), columns: ["cid", "filename", "level"], keepingSpaces: ["filename"])
                let db = try database.open(.readWrite)
                defer { db.close() }
                let levels = try Levels.names(db)
                var bad = input.bad
                var rows: [Content] = []
                var cidOfFilename: [String: (cid: Int64, line: Int)] = [:]
                for record in input.records {
                    guard let cid = Int64(record.fields[0]), cid > 0 else {
                        bad.append(.init(line: record.line, reason: "cid '\(record.fields[0].prefix(40))' is not a whole number ≥ 1"))
                        continue
                    }
                    switch Contents.checked(cid: cid, filename: record.fields[1], level: record.fields[2], levels: levels) {
                    case .failure(let failure):
                        bad.append(.init(line: record.line, reason: failure.description))
                    case .success(let content):
                        if let other = cidOfFilename[content.filename], other.cid != cid {
                            bad.append(.init(line: record.line, reason: "filename '\(content.filename.prefix(80))' is also given to cid \(other.cid) on line \(other.line)"))
                            continue
                        }
                        cidOfFilename[content.filename] = (cid, record.line)
                        rows.append(content)
                    }
                }
                bad.sort { $0.line < $1.line }
                if !bad.isEmpty && !skipBad {
                    throw CommandFailure("\(name == "-" ? "standard input" : name): \(bad.count) bad line\(bad.count == 1 ? "" : "s"), nothing imported (--skip-bad imports the good ones): \(CSVInput.summary(bad))")
                }
                for line in bad { FailureReport.printWarning("skipped \(line)") }
                let count = try ContentStore(database: db).put(rows)
                print("imported \(count) content\(count == 1 ? "" : "s")" + (bad.isEmpty ? "" : "; skipped \(bad.count) bad line\(bad.count == 1 ? "" : "s")"))
            }
        }
    }
}
