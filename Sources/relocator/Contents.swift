import ArgumentParser
import FileMover
import Foundation
import RelocatorApp
import RelocatorCore

extension Relocator {
    struct Contents: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List contents, add them to the database (the original system filled this table itself), or remove one.",
            subcommands: [List.self, Add.self, Import.self, Remove.self])

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

        struct List: AsyncParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(abstract: "Show contents: cid, filename, level and when the level last changed.")

            @OptionGroup var database: DatabaseOptions
            @OptionGroup var logging: LogOptions
            @Option(help: "Only the contents of this level.") var level: String?
            @Option(parsing: .unconditional, help: "How many, 0 to 100000, in cid order. (default: 100)", transform: OptionValue.int(0...100_000))
            var limit = 100
            @Option(parsing: .unconditional, help: "How many to skip first, ≥ 0. (default: 0)", transform: OptionValue.int(0...Int(Int32.max)))
            var offset = 0
            @Flag(help: "Print JSON: a list of {cid, filename, level, update_time}.") var json = false

            func run() async throws {
                let service = try makeCommandService(database: database, access: .readOnly)
                defer { service.close() }
                let rows = try await service.contents(limit: limit, offset: offset, level: level)
                if json { return try JSONOutput.print(rows.map(Row.init)) }
                var table = TextTable("cid", "filename", "level", "update_time")
                for row in rows { table.add([String(row.cid), row.filename, row.level, row.updateTime.cell]) }
                table.print()
            }
        }

        struct Add: AsyncParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add one content, or change its filename and level.",
                discussion: """
                    A changed level of an existing content is recorded as a move (a relocation row naming this command, \
                    ordered among the moves by Redis), and refused while the content has a job in flight.
                    """)
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var database: DatabaseOptions
            @OptionGroup var logging: LogOptions
            @Option(parsing: .unconditional, help: "The content's id, a whole number ≥ 1.", transform: OptionValue.int64(1...Int64.max))
            var cid: Int64
            @Option(help: "The file's path relative to its level directory (no leading /, no '..').")
            var filename: String
            @Option(help: "The level the file is on now; it must be in the level table.")
            var level: String

            func run() async throws {
                let service = try makeCommandService(runtime, database: database, access: .readWrite)
                defer { service.close() }
                switch try await service.putContent(cid: cid, filename: filename, level: level) {
                case .added:
                    print("added cid \(cid): \(Shown.text(filename)) on \(level)")
                case .unchanged:
                    print("cid \(cid) unchanged: \(Shown.text(filename)) on \(level)")
                case .changed(let old):
                    var changes: [String] = []
                    if !FilenameKey.same(old.filename, filename) { changes.append("filename \(Shown.text(old.filename)) → \(Shown.text(filename))") }
                    if old.level != level { changes.append("level \(old.level) → \(level)") }
                    print("changed cid \(cid): \(changes.joined(separator: ", "))")
                }
            }
        }

        struct Import: AsyncParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add or change contents from CSV: cid,filename,level.",
                discussion: """
                    An optional header line (cid,filename,level, in any order) names the columns; fields may be quoted \
                    ("a,b.mp4", "say ""hi"".mp4"), and a quoted filename keeps its spaces; blank lines and lines starting with # are skipped. A bad line (a malformed field, an \
                    unsafe filename, a level the table does not have, a filename given to two cids) is reported with its \
                    line number, and nothing is imported unless --skip-bad. All good lines go in one transaction. A changed \
                    level of an existing content is recorded as a move first, as `contents add` does; while one of them has \
                    a job in flight nothing is imported.
                    """)
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var database: DatabaseOptions
            @OptionGroup var logging: LogOptions
            @Argument(help: "A CSV file; standard input when absent or '-'.") var file: String?
            @Flag(help: "Import the good lines and report the bad ones, rather than refusing the whole file.") var skipBad = false

            func run() async throws {
                let name = file ?? "-"
                let input = CSVInput(try InputFile.read(name), columns: ["cid", "filename", "level"], keepingSpaces: ["filename"])
                let service = try makeCommandService(runtime, database: database, access: .readWrite)
                defer { service.close() }
                let levels = try await service.levelNames()
                var bad = input.bad
                var rows: [Content] = []
                var cidOfFilename: [FilenameKey: (cid: Int64, line: Int)] = [:]
                var lineOfCID: [Int64: (line: Int, content: Content)] = [:]
                for record in input.records {
                    guard let cid = Int64(record.fields[0]), cid > 0 else {
                        bad.append(.init(line: record.line, reason: "cid '\(record.fields[0].prefix(40))' is not a whole number ≥ 1"))
                        continue
                    }
                    switch App.checkedContent(cid: cid, filename: record.fields[1], level: record.fields[2], levels: levels) {
                    case .failure(let failure):
                        bad.append(.init(line: record.line, reason: failure.description))
                    case .success(let content):
                        if let other = cidOfFilename[FilenameKey(content.filename)], other.cid != cid {
                            bad.append(.init(line: record.line, reason: "filename '\(content.filename.prefix(80))' is also given to cid \(other.cid) on line \(other.line)"))
                            continue
                        }
                        // (The same line twice is one content; two different ones, a mistake whichever wins.)
                        if let earlier = lineOfCID[cid] {
                            // (Bytes, not characters: two spellings of one character are two names to the kernel.)
                            if !FilenameKey.same(earlier.content.filename, content.filename) || earlier.content.level != content.level {
                                bad.append(.init(line: record.line, reason: "cid \(cid) is also on line \(earlier.line), as \(earlier.content.filename.prefix(80)) on \(earlier.content.level)"))
                            }
                            continue
                        }
                        lineOfCID[cid] = (record.line, content)
                        cidOfFilename[FilenameKey(content.filename)] = (cid, record.line)
                        rows.append(content)
                    }
                }
                bad.sort { $0.line < $1.line }
                if !bad.isEmpty && !skipBad {
                    throw CommandFailure("\(name == "-" ? "standard input" : name): \(bad.count) bad line\(bad.count == 1 ? "" : "s"), nothing imported (--skip-bad imports the good ones): \(CSVInput.summary(bad))")
                }
                for line in bad { FailureReport.printWarning("skipped \(line)") }
                let count = try await service.putContents(rows, by: "relocator contents import")
                print("imported \(count) content\(count == 1 ? "" : "s")" + (bad.isEmpty ? "" : "; skipped \(bad.count) bad line\(bad.count == 1 ? "" : "s")"))
            }
        }

        struct Remove: AsyncParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove a content's row from the database; its file must be gone from every level.",
                discussion: """
                    For a content reconcile reports as missing, or one that no longer exists: removes the row only, \
                    never a file. Refused while the content has a job that is not committed (queued, moving, retrying, \
                    deferred, done or dead: a dead job may have left a copy at its target, so `relocator dlq purge \
                    --cid N` it first), and while any level directory of this machine (RELOCATOR_LEVELS or \
                    --level-dirs, which must name every level of the level table) holds a file at the content's path. \
                    Its relocations stay as history; Redis forgets its place among the level's residents, when it \
                    last moved and its hit counter.
                    """)
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var database: DatabaseOptions
            @OptionGroup var logging: LogOptions
            @Option(parsing: .unconditional, help: "The content's id, a whole number ≥ 1.", transform: OptionValue.int64(1...Int64.max))
            var cid: Int64
            @Option(help: "level=directory pairs, e.g. gold=/data/ssd,silver=/data/hdd (default: $RELOCATOR_LEVELS).")
            var levelDirs: String?

            func run() async throws {
                let (directories, setting) = try runtime.levelDirectories(flag: levelDirs)
                // A level whose disk does not answer cannot say the file is gone: nothing is removed.
                let silent = try verifyAnsweringLevelLayout(directories, setting: setting, within: DiskLooks.requestPatience)
                if let (level, why) = silent.min(by: { $0.key < $1.key }) {
                    throw CommandFailure("cannot tell whether level '\(level)' holds cid \(cid)'s file: \(why); nothing removed")
                }
                let service = try makeCommandService(runtime, database: database, access: .readWrite)
                defer { service.close() }
                let removed = try await service.removeContent(cid: cid, directories: directories, setting: setting,
                                                              holder: "contents-remove-\(ProcessInfo.processInfo.hostName):\(getpid())")
                let history = removed.history
                print("removed cid \(cid) (\(Shown.text(removed.content.filename)), on \(removed.content.level) in the database)"
                      + (history == 0 ? "" : history == 1 ? "; its relocation stays as history" : "; its \(history) relocations stay as history"))
            }
        }
    }
}
