import ArgumentParser
import Foundation
import JobQueue
import RedisClient
import RelocatorAPI
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

        static func connect(_ runtime: RuntimeOptions) throws -> (JobQueue, RedisConnection) {
            (JobQueue(keys: try runtime.keys()), RedisConnection(url: try runtime.redis(), replication: try runtime.replication()))
        }

        /// The dead jobs of the selection; the cids asked for that have none make the command fail
        /// before anything changes (`no dead job for cid 99, 100; nothing replayed`).
        static func selected(_ selection: Selection, from dead: [JobQueue.DeadJob], verb: String) throws -> [JobQueue.DeadJob] {
            guard let wanted = selection.cids else { return dead }
            let missing = DeadLetterSelection.missing(wanted, deadIDs: dead.map(\.id))
            guard missing.isEmpty else { throw CommandFailure(DeadLetterSelection.message(missing: missing, action: verb)) }
            return dead.filter { entry in JobID(entry.id).map { wanted.contains($0.cid) } ?? false }
        }

        /// `7:1764… (cid 7): g.mp4, bronze → gold`.
        static func describe(_ entry: JobQueue.DeadJob) -> String {
            guard let job = entry.job else { return "\(entry.id) (its job hash is missing)" }
            return "\(job.id) (cid \(job.cid)): \(job.filename), \(job.dbLevel) → \(job.target)"
        }

        struct List: ParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(abstract: "Show cid, filename, from → to, attempts, when, reason and last error.")
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var logging: LogOptions
            @Flag(help: "Print JSON: a list of {id, cid, filename, from, to, attempts, reason, last_error, updated_at}, as GET /v1/dead.") var json = false

            func run() throws {
                let (queue, redis) = try DLQ.connect(runtime)
                defer { redis.close() }
                let dead = try queue.deadJobs(on: redis)
                if json { return try JSONOutput.print(dead.map(DeadJobView.init)) }
                var table = TextTable("cid", "filename", "move", "attempts", "updated_at", "reason", "last_error")
                for entry in dead {
                    guard let job = entry.job else {
                        table.add([entry.id, "(job hash missing)", "-", "-", "-", "-", "-"])
                        continue
                    }
                    table.add([String(job.cid), job.filename, "\(job.dbLevel) → \(job.target)", String(job.attempts),
                               TimeText.rfc3339(milliseconds: job.updatedAt), job.reason.cell, job.lastError.cell])
                }
                table.print()
                if dead.isEmpty { print("the dead-letter list is empty") }
            }
        }

        struct Replay: ParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                abstract: "Reset attempts and queue dead jobs again.",
                discussion: "A --cid with no dead job is an error, and then nothing is replayed (with --dry-run too).")
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var logging: LogOptions
            @OptionGroup var selection: Selection
            @Flag(help: "Show what would be replayed (filename, from and to); change nothing.") var dryRun = false

            func run() throws {
                let (queue, redis) = try DLQ.connect(runtime)
                defer { redis.close() }
                let chosen = try DLQ.selected(selection, from: try queue.deadJobs(on: redis), verb: "replayed")
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
                    for (id, outcome) in try redis.replicated({ try queue.dead(.replay, cids: chunk, on: redis) }) {
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

        struct Purge: ParsableCommand, LoggedCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove dead jobs (their files stay where they are).",
                discussion: "A --cid with no dead job is an error, and then nothing is purged (with --dry-run too).")
            @OptionGroup var runtime: RuntimeOptions
            @OptionGroup var logging: LogOptions
            @OptionGroup var selection: Selection
            @Flag(help: "Show what would be purged (filename, from and to); change nothing.") var dryRun = false

            func run() throws {
                let (queue, redis) = try DLQ.connect(runtime)
                defer { redis.close() }
                let chosen = try DLQ.selected(selection, from: try queue.deadJobs(on: redis), verb: "purged")
                if dryRun {
                    for entry in chosen { print("would purge \(DLQ.describe(entry))") }
                    print(chosen.isEmpty ? "nothing to purge" : "\(chosen.count) job\(chosen.count == 1 ? "" : "s") would be purged")
                    return
                }
                let byID = Dictionary(chosen.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                var purged = 0
                for (id, outcome) in try redis.replicated({ try queue.dead(.purge, cids: selection.cids, on: redis) }) {
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
