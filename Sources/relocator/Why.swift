import RelocatorApp
import ArgumentParser
import FileMover
import Foundation
import Logging
import RelocatorAPI
import RelocatorCore
import RelocatorServices

extension Relocator {
    struct Why: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Say why a content is where it is: its level, its file on the disks, its last count, its job and its moves.",
            discussion: """
                The same report as GET /v1/contents/{cid}/why. The disks are those of RELOCATOR_LEVELS (or \
                --level-dirs) as this machine sees them; without them the report leaves the disks out. An error \
                of an earlier attempt of a job that went on is shown as history, not as the job's problem.
                """)

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var logging: LogOptions
        @Argument(help: "The content's id, a whole number ≥ 1.", transform: OptionValue.int64(1...Int64.max)) var cid: Int64
        @Option(help: "level=directory pairs, e.g. gold=/data/ssd,silver=/data/hdd (default: $RELOCATOR_LEVELS, when set).")
        var levelDirs: String?
        @Flag(help: "Print JSON, as GET /v1/contents/{cid}/why.") var json = false

        func run() async throws {
            var directories: LevelDirectories?
            if levelDirs != nil || !(runtime.environment["RELOCATOR_LEVELS"] ?? "").isEmpty {
                let (found, setting) = try runtime.levelDirectories(flag: levelDirs)
                // (A level whose disk does not answer is not checked: the report says it did not answer.)
                _ = try verifyAnsweringLevelLayout(found, setting: setting, within: DiskLooks.requestPatience)
                directories = found
            }
            let (url, setting) = try database.resolved()
            if setting == nil, case .sqlite(let path) = url, !FileManager.default.fileExists(atPath: path) { throw DatabaseOptions.noDatabase }
            let service = Composition.app(try runtime.servers(database: url, replicated: false), access: .readOnly, redisConnections: 2, databaseConnections: 2,
                                          jobTTL: try runtime.jobTTL(), directories: directories, halfLife: try runtime.halfLife(),
                                          logger: Logger(label: "relocator.why", factory: { _ in SwiftLogNoOpLogHandler() }))
            defer { service.close() }
            let report = WhyReport(try await service.why(cid: cid))
            if json { return try JSONOutput.print(report) }
            print(Self.text(report))
        }

        /// The report for people: the summary, then the disks, the job and the moves as tables.
        static func text(_ report: WhyReport) -> String {
            var lines = [Shown.message(report.summary), ""]
            let content = report.content
            lines.append("content: cid \(content.cid), \(Shown.text(content.filename)), on \(content.level) since \(content.updateTime ?? "(never recorded)")")
            var ranges = TextTable("level", "min_counts", "max_counts", "")
            for range in report.levels {
                ranges.add([range.name, String(range.minCounts), String(range.maxCounts), range.name == report.countLevel ? "← the last count" : ""])
            }
            lines += ["", ranges.text]
            if !report.disks.isEmpty {
                var disks = TextTable("level", "directory", "state", "size", "detail")
                for disk in report.disks {
                    disks.add([disk.level, disk.directory, disk.state, disk.size.map(String.init).cell, disk.detail.cell])
                }
                lines += ["", disks.text]
            }
            if let view = report.job {
                let job = view.job
                lines += ["", "job \(job.id): \(job.dbLevel) → \(job.target), \(job.status.rawValue), count \(job.count), attempts \(job.attempts)"
                          + (job.workerID.map { ", worker \($0)" } ?? "")]
                // A last error of a job that went on (committed, done, moving…) is an earlier attempt's.
                let current = job.status == .retrying || job.status == .dead
                if let error = job.lastError, current { lines.append("  last error (\(job.reason ?? "error")): \(Shown.message(error))") }
                if let error = job.earlierError ?? (current ? nil : job.lastError) { lines.append("  earlier error (history): \(Shown.message(error))") }
                if let route = job.pulledFrom {
                    lines.append("  pulled from another host: \(route.sentence), \(job.bytesDone ?? 0) of \(job.bytesTotal.map(String.init) ?? "?") bytes verified")
                }
                if let next = job.nextTarget { lines.append("  then to \(next)") }
                if let next = view.nextRetryAt { lines.append("  next try at \(next)") }
                if let reason = job.deferReason { lines.append("  deferred: \(reason)" + (job.dueAt.map { " until \(TimeText.rfc3339(milliseconds: $0))" } ?? "")) }
            }
            if !report.history.isEmpty {
                var moves = TextTable("moved_at", "job_id", "from", "to", "bytes", "checksum", "worker", "attempts")
                for move in report.history {
                    moves.add([move.movedAt, move.jobID, move.from, move.to, String(move.bytes), Relocations.short(move.checksum), move.worker,
                               String(move.attempts)])
                }
                lines += ["", moves.text]
            }
            return lines.joined(separator: "\n")
        }
    }
}
