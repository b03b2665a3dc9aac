import ArgumentParser
import FileMover
import Foundation
import JobQueue
import Logging
import RedisClient
import RelocatorAPI
import RelocatorCore
import SQLStore

/// JSON for the operator commands' `--json`.
func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

extension Relocator {
    struct Enqueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Submit a content's view count, as the API does.")

        @OptionGroup var runtime: RuntimeOptions
        @Option(help: "The content's id.") var cid: Int64?
        @Option(help: "Its view count.") var count: Int64?
        @Option(help: "Many counts at once: a CSV file of `cid,count` lines ('-' for standard input).") var file: String?

        func validate() throws {
            if file != nil {
                guard cid == nil, count == nil else { throw ValidationError("give --file, or --cid and --count") }
                return
            }
            guard let cid, let count else { throw ValidationError("give --cid N --count N, or --file FILE") }
            guard cid > 0 else { throw ValidationError("--cid must be a positive whole number") }
            guard count >= 0 else { throw ValidationError("--count must be a whole number ≥ 0") }
        }

        func run() async throws {
            let service = try makeService(runtime, logger: Logger(label: "relocator.enqueue", factory: { _ in SwiftLogNoOpLogHandler() }))
            defer { service.close() }
            if let file { return try await bulk(file, service) }
            guard let cid, let count else { return }
            let submitted = try await service.submit(cid: cid, count: count)
            let job = submitted.submission.job
            switch submitted.submission.outcome {
            case .inPlace, .dropped: print("cid \(cid): already on \(submitted.content.level); nothing to move")
            case .followUp: print("cid \(cid): moving to \(job?.target ?? "?") now; then to \(submitted.target) (job \(job?.id ?? "?"))")
            default: print("cid \(cid): \(submitted.submission.outcome.rawValue), \(job?.dbLevel ?? "?") → \(job?.target ?? "?") (job \(job?.id ?? "?"), \(job?.status.rawValue ?? "?"))")
            }
        }

        private func bulk(_ file: String, _ service: RelocationService) async throws {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
            guard let data else { throw ValidationError("cannot read \(file)") }
            var counts: [(cid: Int64, count: Int64)] = []
            for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                let fields = trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard fields.count == 2, let cid = Int64(fields[0]), cid > 0, let count = Int64(fields[1]), count >= 0 else {
                    throw ValidationError("\(file) line \(index + 1): expected cid,count with whole numbers")
                }
                counts.append((cid, count))
            }
            let result = try await service.submitMany(counts)
            for line in result.skipped { print("skipped \(line)") }
            print(result.outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the depth of every queue and list.")

        @OptionGroup var runtime: RuntimeOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let service = try makeService(runtime, logger: Logger(label: "relocator.status", factory: { _ in SwiftLogNoOpLogHandler() }))
            defer { service.close() }
            let stats = try await service.stats()
            if json { return try printJSON(stats.json) }
            for level in stats.levels { print("queue:\(level.name)\t\(level.depth)") }
            print("processing\t\(stats.processing)")
            print("retry\t\(stats.retry)")
            print("done\t\(stats.done)")
            print("committing\t\(stats.committing)")
            print("dead\t\(stats.dead)")
            print("workers+committers\t\(stats.workers.filter(\.alive).count) alive of \(stats.workers.count)")
        }
    }

    struct DLQ: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dlq", abstract: "The dead-letter list: jobs that failed for good.",
            subcommands: [List.self, Replay.self, Purge.self])

        struct Selection: ParsableArguments {
            @Flag(help: "Every dead job.") var all = false
            @Option(help: "A content id (repeatable).") var cid: [Int64] = []

            func validate() throws {
                guard all != !cid.isEmpty else { throw ValidationError("give --all or --cid N (not both)") }
                guard cid.allSatisfy({ $0 > 0 }) else { throw ValidationError("--cid must be a positive whole number") }
            }

            var cids: [Int64]? { all ? nil : cid }
        }

        static func queue(_ runtime: RuntimeOptions) throws -> (JobQueue, RedisConnection) {
            (JobQueue(keys: try runtime.keys()), RedisConnection(url: try runtime.redis()))
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show cid, filename, from → to, attempts, last error, when.")
            @OptionGroup var runtime: RuntimeOptions
            @Flag(help: "Print JSON.") var json = false

            func run() throws {
                let (queue, redis) = try DLQ.queue(runtime)
                let dead = try queue.deadJobs(on: redis)
                if json { return try printJSON(dead.map { $0.job?.summary ?? ["id": $0.id] }) }
                if dead.isEmpty { print("the dead-letter list is empty") }
                let formatter = ISO8601DateFormatter()
                for (id, job) in dead.map({ ($0.id, $0.job) }) {
                    guard let job else { print("\(id)\t(job hash missing)"); continue }
                    let when = formatter.string(from: Date(timeIntervalSince1970: Double(job.updatedAt) / 1000))
                    print("\(job.cid)\t\(job.filename)\t\(job.dbLevel) → \(job.target)\tattempts \(job.attempts)\t\(when)\t\(job.lastError ?? "")")
                }
            }
        }

        struct Replay: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Reset attempts and queue dead jobs again.")
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var selection: Selection
            @Flag(help: "Show what would be replayed, change nothing.") var dryRun = false

            func run() throws {
                let (queue, redis) = try DLQ.queue(runtime)
                let ids: [String]
                if dryRun {
                    let wanted = selection.cids.map(Set.init)
                    ids = try queue.deadJobs(on: redis).map(\.id).filter { id in
                        guard let wanted else { return true }
                        return JobID(id).map { wanted.contains($0.cid) } ?? false
                    }
                } else {
                    ids = try queue.dead(.replay, cids: selection.cids, on: redis).filter { $0.outcome == .replayed }.map(\.id)
                }
                if let wanted = selection.cids {
                    let found = Set(ids.compactMap { JobID($0)?.cid })
                    let missing = wanted.filter { !found.contains($0) }
                    if !missing.isEmpty {
                        throw ValidationError("no dead job for cid \(missing.map(String.init).joined(separator: ", "))")
                    }
                }
                for id in ids { print(dryRun ? "would replay \(id)" : "replayed \(id)") }
                if ids.isEmpty { print("nothing to replay") }
            }
        }

        struct Purge: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove dead jobs (their files stay where they are).")
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var selection: Selection

            func run() throws {
                let (queue, redis) = try DLQ.queue(runtime)
                let results = try queue.dead(.purge, cids: selection.cids, on: redis)
                let ids = results.map(\.id)
                for (id, outcome) in results { print(outcome == .reversed ? "purged \(id); its copy was already published, a job now removes it" : "purged \(id)") }
                if ids.isEmpty { print("nothing to purge") }
            }
        }
    }

    struct Contents: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add contents to the database (the original system filled this table itself).",
            subcommands: [Add.self, Import.self])

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add or change one content.")
            @OptionGroup var database: DatabaseOptions
            @Option var cid: Int64
            @Option var filename: String
            @Option(help: "The level the file is on now.") var level: String

            func run() throws {
                let row = try Import.validated(cid: cid, filename: filename, level: level, line: nil)
                let db = try database.open()
                defer { db.close() }
                try ContentStore(database: db).put(row)
            }
        }

        struct Import: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add or change contents from CSV lines `cid,filename,level` (file or standard input).")
            @OptionGroup var database: DatabaseOptions
            @Argument(help: "A CSV file; standard input when absent.") var file: String?

            static func validated(cid: Int64, filename: String, level: String, line: Int?) throws -> Content {
                let place = line.map { "line \($0): " } ?? ""
                guard cid > 0 else { throw ValidationError("\(place)cid must be a positive whole number") }
                do { _ = try Filename(filename) } catch { throw ValidationError("\(place)filename '\(filename.prefix(80))': \(error)") }
                guard LevelDirectories.isValidName(level) else { throw ValidationError("\(place)level '\(level.prefix(80))' is not a valid level name") }
                return Content(cid: cid, filename: filename, level: level)
            }

            func run() throws {
                let text: String
                if let file {
                    guard let contents = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
                    text = String(decoding: contents, as: UTF8.self)
                } else {
                    text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                }
                var rows: [Content] = []
                for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
                    if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                    let fields = trimmed.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
                    guard fields.count == 3, let cid = Int64(fields[0].trimmingCharacters(in: .whitespaces)) else {
                        throw ValidationError("line \(index + 1): expected cid,filename,level")
                    }
                    // The level is the last field, so a filename may hold commas.
                    let levelSplit = trimmed.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                    let level = levelSplit.last!.trimmingCharacters(in: .whitespaces)
                    let filename = levelSplit.dropFirst().dropLast().joined(separator: ",")
                    rows.append(try Self.validated(cid: cid, filename: filename, level: level, line: index + 1))
                }
                let db = try database.open()
                defer { db.close() }
                let store = ContentStore(database: db)
                try db.transaction { for row in rows { try store.put(row) } }
                print("\(rows.count) contents")
            }
        }
    }

    struct Relocations: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the latest committed moves.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "How many.") var limit = 20
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let db = try database.open()
            defer { db.close() }
            let rows = try ContentStore(database: db).relocations(limit: max(1, limit))
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                return print(String(decoding: try encoder.encode(rows), as: UTF8.self))
            }
            for row in rows {
                print("\(row.cid)\t\(row.from) → \(row.to)\t\(row.bytes) bytes\tsha256 \(row.checksum.prefix(16))…\t\(row.worker)\t\(row.movedAt)")
            }
        }
    }
}

extension Relocator {
    struct Checksum: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the SHA-256 of files as the workers compute it (the format of sha256sum).")
        @Argument(help: "Files.") var files: [String]

        func run() throws {
            let mover = FileMover()
            for file in files { print("\(try mover.checksum(of: file, algorithm: .sha256).hex)  \(file)") }
        }
    }
}
