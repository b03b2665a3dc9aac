import ArgumentParser
import Foundation
import RelocatorAPI
import RelocatorApp
import RelocatorCore

extension Relocator {
    struct DLQ: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dlq", abstract: "The dead-letter list: jobs that failed for good.",
            subcommands: [List.self, Replay.self, Purge.self])

        struct Selection: ParsableArguments {
            @Flag(help: "Every dead job.") var all = false
            @Option(parsing: .unconditionalSingleValue, help: "A content id, ≥ 1 (repeatable).", transform: OptionValue.int64(1...Int64.max))
            var cid: [Int64] = []

            func validate() throws {
                guard all != !cid.isEmpty else { throw ValidationError("give --all or --cid N (not both)") }
            }

            var cids: [Int64]? { all ? nil : cid }
        }

        /// `7:1764… (cid 7): g.mp4, bronze → gold`.
        static func describe(_ entry: DeadLetter) -> String {
            guard let job = entry.job else { return "\(entry.id) (its job hash is missing)" }
            return "\(job.id) (cid \(job.cid)): \(Shown.text(job.filename)), \(job.dbLevel) → \(job.target)"
        }

        struct List: AsyncParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                abstract: "Show cid, filename, from → to, attempts, when, reason and last error, a page at a time.",
                discussion: """
                    Newest jobs first, --limit at a time, then how many the list holds and the --cursor of the next page. \
                    A cursor names the last job shown, so dead jobs replayed or purged between two pages make the next \
                    one neither skip nor repeat a job.
                    """)
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var logging: LogOptions
            @Option(parsing: .unconditional, help: "Jobs per page, 1 to \(PageRequest.maximumLimit). (default: \(PageRequest.defaultLimit))",
                    transform: OptionValue.int(1...PageRequest.maximumLimit))
            var limit = PageRequest.defaultLimit
            @Option(parsing: .unconditional, help: "Start after the job this cursor names (the next cursor a page printed). (default: the first page)")
            var cursor: String?
            @Flag(help: "Print JSON as GET /v1/dead answers: {dead: [{id, cid, filename, from, to, attempts, reason, last_error, updated_at}], total, limit, next_cursor}.")
            var json = false

            func validate() throws {
                if let problem = PageRequest.problem(limit: nil, cursor: cursor) { throw ValidationError(problem) }
            }

            func run() async throws {
                let service = try makeCommandService(runtime, access: .readOnly, requireDatabase: false)
                defer { service.close() }
                let page = try await service.deadPage(PageRequest(limit: limit, cursor: cursor))
                if json {
                    return try JSONOutput.print(object: [
                        "dead": try page.items.map { try JSONSerialization.jsonObject(with: RelocatorJSON.data(DeadJobView($0))) },
                        "total": page.total, "limit": limit, "next_cursor": page.next ?? NSNull(),
                    ])
                }
                var table = TextTable("cid", "filename", "move", "attempts", "updated_at", "reason", "last_error")
                for entry in page.items {
                    guard let job = entry.job else {
                        table.add([entry.id, "(job hash missing)", "-", "-", "-", "-", "-"])
                        continue
                    }
                    table.add([String(job.cid), job.filename, "\(job.dbLevel) → \(job.target)", String(job.attempts),
                               TimeText.rfc3339(milliseconds: job.updatedAt), job.reason.cell, job.lastError.cell])
                }
                if page.total == 0 {
                    print("the dead-letter list is empty")
                    return
                }
                table.print()
                print(Self.footer(shown: page.items.count, total: page.total, next: page.next, limit: limit))
            }

            /// `50 of 80000 dead jobs shown; next page: relocator dlq list --limit 50 --cursor 7:1764…`.
            static func footer(shown: Int, total: Int, next: String?, limit: Int) -> String {
                "\(shown) of \(total) dead job\(total == 1 ? "" : "s") shown"
                    + (next.map { "; next page: relocator dlq list --limit \(limit) --cursor \($0)" } ?? "")
            }
        }

        struct Replay: AsyncParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                abstract: "Reset attempts and queue dead jobs again.",
                discussion: "A --cid with no dead job is an error, and then nothing is replayed (with --dry-run too).")
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var logging: LogOptions
            @OptionGroup var selection: Selection
            @Flag(help: "Show what would be replayed (filename, from and to); change nothing.") var dryRun = false

            func run() async throws {
                let service = try makeCommandService(runtime, access: .readOnly, requireDatabase: false)
                defer { service.close() }
                let chosen = try await service.deadLetters(cids: selection.cids, action: "replayed")
                if dryRun {
                    for entry in chosen { print("would replay \(DLQ.describe(entry))") }
                    print(chosen.isEmpty ? "nothing to replay" : "\(chosen.count) job\(chosen.count == 1 ? "" : "s") would be replayed")
                    return
                }
                let byID = Dictionary(chosen.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                let cids = chosen.compactMap { JobID($0.id)?.cid }
                let progress = ProgressReporter(label: "replay", total: cids.count, unit: "jobs")
                var replayed = 0, other: [String] = []
                var start = 0
                while start < cids.count {
                    let chunk = Array(cids[start..<min(start + 1000, cids.count)])
                    for (id, outcome) in try await service.dead(.replay, cids: chunk, by: "relocator dlq replay") {
                        let what = byID[id].map(DLQ.describe) ?? "job \(id)"
                        switch outcome {
                        case .replayed:
                            replayed += 1
                            print("replayed \(what)")
                        default:
                            other.append("\(what): \(outcome.rawValue)")
                        }
                    }
                    start += chunk.count
                    progress.update(start)
                }
                progress.finish()
                for line in other { FailureReport.printWarning("not replayed: \(line)") }
                print("\(replayed) job\(replayed == 1 ? "" : "s") replayed")
            }
        }

        struct Purge: AsyncParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove dead jobs (their files stay where they are).",
                discussion: "A --cid with no dead job is an error, and then nothing is purged (with --dry-run too).")
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var logging: LogOptions
            @OptionGroup var selection: Selection
            @Flag(help: "Show what would be purged (filename, from and to); change nothing.") var dryRun = false

            func run() async throws {
                let service = try makeCommandService(runtime, access: .readOnly, requireDatabase: false)
                defer { service.close() }
                let chosen = try await service.deadLetters(cids: selection.cids, action: "purged")
                if dryRun {
                    for entry in chosen { print("would purge \(DLQ.describe(entry))") }
                    print(chosen.isEmpty ? "nothing to purge" : "\(chosen.count) job\(chosen.count == 1 ? "" : "s") would be purged")
                    return
                }
                let byID = Dictionary(chosen.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                var purged = 0
                for (id, outcome) in try await service.dead(.purge, cids: selection.cids, by: "relocator dlq purge") {
                    let what = byID[id].map(DLQ.describe) ?? "job \(id)"
                    switch outcome {
                    case .purged, .stale:
                        purged += 1
                        print("purged \(what)")
                    case .reversed:
                        purged += 1
                        print("purged \(what); its copy was already published, a job now removes it")
                    default:
                        FailureReport.printWarning("not purged: \(what): \(outcome.rawValue)")
                    }
                }
                print("\(purged) job\(purged == 1 ? "" : "s") purged")
            }
        }
    }
}
