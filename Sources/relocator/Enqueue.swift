import RelocatorApp
import ArgumentParser
import Foundation
import Logging
import RelocatorAPI
import RelocatorCore

extension Relocator {
    struct Enqueue: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit view counts, as the API does.",
            discussion: """
                --file reads CSV lines cid,count (an optional header line cid,count; '-' for standard input). Every \
                line is checked first — a whole number, a content that exists with a safe filename, a count some \
                level holds — and a bad line is reported with its number; nothing is submitted unless --skip-bad. A \
                count above the top level's max_counts raises it to the count (the original system's rule), and says so.
                """)

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var logging: LogOptions
        @Option(parsing: .unconditional, help: "The content's id, a whole number ≥ 1.", transform: OptionValue.int64(1...Int64.max))
        var cid: Int64?
        @Option(parsing: .unconditional, help: "Its view count, a whole number from 0 to 2^53 − 1 (9007199254740991).",
                transform: OptionValue.int64(CountBound.range))
        var count: Int64?
        @Option(parsing: .unconditional,
                help: "Hits to add to the content's decaying counter instead of a count, 1 to 1000000 (needs RELOCATOR_HALF_LIFE), as POST /v1/contents/{cid}/hits.",
                transform: OptionValue.int64(1...1_000_000))
        var hits: Int64?
        @Option(help: "Many counts at once: a CSV file of cid,count lines ('-' for standard input).")
        var file: String?
        @Flag(help: "With --file: submit the good lines and report the bad ones, rather than refusing the whole file.")
        var skipBad = false

        func validate() throws {
            if hits != nil {
                guard cid != nil, count == nil, file == nil, !skipBad else {
                    throw ValidationError("--hits goes with --cid alone (not --count, --file or --skip-bad)")
                }
                return
            }
            if file != nil {
                guard cid == nil, count == nil else { throw ValidationError("give --file, or --cid and --count (not both)") }
                return
            }
            guard cid != nil, count != nil else { throw ValidationError("give --cid N --count N, or --file FILE") }
            if skipBad { throw ValidationError("--skip-bad goes with --file") }
        }

        func run() async throws {
            let service = try makeService(runtime, database, access: .readWrite, logger: Logger(label: "relocator.enqueue", factory: { _ in SwiftLogNoOpLogHandler() }))
            defer { service.close() }
            if let file { return try await bulk(file, service) }
            if let cid, let hits {
                guard try runtime.halfLife() != nil else {
                    throw CommandFailure("--hits needs RELOCATOR_HALF_LIFE (e.g. 24h): hits add to a counter that decays with it")
                }
                let (value, submitted) = try await service.hit(cid: cid, hits: hits, from: .hitsCommand)
                let job = submitted.result.job
                print("cid \(cid): \(hits) \(hits == 1 ? "hit" : "hits") added, decayed count now \(String(format: "%.1f", value)), which falls in \(submitted.target); "
                      + (job.map { "\(submitted.result.outcome.rawValue), \($0.dbLevel) → \($0.target) (job \($0.id), \($0.status.rawValue))" } ?? "nothing to move"))
                return
            }
            guard let cid, let count else { return }
            if let raised = try await Self.raiseTopLevel(for: count, service) { print(raised) }
            let submitted = try await service.submit(cid: cid, count: count, from: .enqueueCommand)
            let job = submitted.result.job
            switch submitted.result.outcome {
            case .inPlace, .dropped:
                print("cid \(cid): already on \(submitted.target); nothing to move")
            case .followUp:
                print("cid \(cid): moving to \(job?.target ?? "?") now, then to \(submitted.target) (job \(job?.id ?? "?"))")
            default:
                print("cid \(cid): \(submitted.result.outcome.rawValue), \(job?.dbLevel ?? "?") → \(job?.target ?? "?") (job \(job?.id ?? "?"), \(job?.status.rawValue ?? "?"))")
            }
        }

        /// The original rule, said aloud: a count above the top level's `max_counts` raises it.
        /// Done here, before submitting, so the command can report what it changed.
        static func raiseTopLevel(for count: Int64, _ service: App) async throws -> String? {
            guard let raise = try await service.raiseTopLevel(for: count), let previous = raise.previous else { return nil }
            return "raised \(raise.level)'s max_counts from \(previous) to \(count)"
        }

        private func bulk(_ file: String, _ service: App) async throws {
            let text = try await BlockingExecutor.shared.run { try InputFile.read(file) }
            let input = CSVInput(text, columns: ["cid", "count"])
            var bad = input.bad
            var counts: [(line: Int, cid: Int64, count: Int64)] = []
            for record in input.records {
                do {
                    let cid = try OperatorValues.wholeNumber(record.fields[0], in: 1...Int64.max)
                    do {
                        counts.append((record.line, cid, try OperatorValues.wholeNumber(record.fields[1], in: CountBound.range)))
                    } catch {
                        bad.append(.init(line: record.line, reason: "count: \(error.reason)"))
                    }
                } catch {
                    bad.append(.init(line: record.line, reason: "cid: \(error.reason)"))
                }
            }
            // What the service would skip, found before anything is submitted.
            let cids = counts.map(\.cid)
            let (contents, table) = try await service.store.withStore { store in
                (try store.contents(cids: cids), LevelTable(try store.levels()))
            }
            var good: [(cid: Int64, count: Int64)] = []
            for item in counts {
                guard let content = contents[item.cid] else {
                    bad.append(.init(line: item.line, reason: "no content has cid \(item.cid)"))
                    continue
                }
                do {
                    _ = try Filename(content.filename)
                } catch {
                    bad.append(.init(line: item.line, reason: "cid \(item.cid): its filename cannot be moved safely (\(error))"))
                    continue
                }
                guard table.choose(count: item.count) != nil else {
                    bad.append(.init(line: item.line, reason: "no level holds the count \(item.count); check the level table"))
                    continue
                }
                good.append((item.cid, item.count))
            }
            bad.sort { $0.line < $1.line }
            let source = file == "-" ? "standard input" : file
            if !bad.isEmpty && !skipBad {
                throw CommandFailure("\(source): \(bad.count) bad line\(bad.count == 1 ? "" : "s"), nothing submitted (--skip-bad submits the good ones): \(CSVInput.summary(bad))")
            }
            for line in bad { FailureReport.printWarning("skipped \(line)") }
            if let top = good.map(\.count).max(), let raised = try await Self.raiseTopLevel(for: top, service) { print(raised) }
            let progress = ProgressReporter(label: "enqueue", total: good.count, unit: "counts")
            var outcomes: [String: Int] = [:]
            var skipped: [String] = []
            var start = 0
            while start < good.count {
                let chunk = Array(good[start..<min(start + 1000, good.count)])
                let result = try await service.submitMany(chunk)
                for (outcome, number) in result.outcomes { outcomes[outcome, default: 0] += number }
                skipped += result.skipped
                start += chunk.count
                progress.update(start)
            }
            progress.finish()
            for line in skipped { FailureReport.printWarning("skipped \(line)") }
            let summary = outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("submitted \(good.count - skipped.count) count\(good.count - skipped.count == 1 ? "" : "s")" + (summary.isEmpty ? "" : ": \(summary)")
                  + (bad.isEmpty ? "" : "; skipped \(bad.count) bad line\(bad.count == 1 ? "" : "s")"))
        }
    }
}
