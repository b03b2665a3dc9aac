import ArgumentParser
import FileMover
import Foundation
import JobQueue
import RelocatorCore
import RelocatorServices
import SQLStore

extension Relocator {
    struct Reconcile: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare the database with the disks and Redis; with --fix, repair what is safe.",
            discussion: """
                Finds: a content whose file sits on another level than the database says (wrong_level), a file on \
                two levels (duplicate when the copies are identical, conflict when they differ), a file on no level \
                (missing), a temporary .part file no move owns (stale_part), a job whose id Redis lost from the list \
                its status calls for (orphaned_job), a filename that cannot be moved safely (unsafe_filename) and two \
                contents naming one file (shared_filename). --fix sets the database to where the file really is, \
                removes verified duplicates and stale .part files, and puts orphaned jobs back on their lists; \
                conflicts and missing files are only reported. Safe beside running workers and from cron: a content \
                with a job in flight is left alone, and every other is held (no worker takes it) while it is fixed. \
                Exit status: 0 when nothing is left to do, 2 when findings remain that need an operator.
                """)

        @OptionGroup var runtime: RuntimeOptions

        @Option(help: "level=directory pairs (default: $RELOCATOR_LEVELS).")
        var levelDirs: String?

        @Flag(help: "Repair what is safe to repair.")
        var fix = false

        func run() throws {
            let directories = try runtime.levelDirectories(flag: levelDirs)
            _ = try verifyLevelLayout(directories, setting: levelDirs == nil ? "RELOCATOR_LEVELS" : "--level-dirs")
            let session = RedisQueueDriver(queue: JobQueue(keys: try runtime.keys()), url: try runtime.redis()).session()
            defer { session.close() }
            let db = try runtime.database.open()
            defer { db.close() }
            var settings = Reconciler.Settings(directories: directories, fix: fix)
            settings.algorithm = try runtime.checksumAlgorithm()
            var reconciler = try Reconciler(settings: settings, session: session, store: ContentStore(database: db),
                                            onFinding: { print($0.line) })
            try reconciler.run()
            let open = reconciler.findings.filter { $0.fixed == nil }.count
            print("\(reconciler.findings.count) findings, \(reconciler.findings.count - open) fixed, \(open) need attention"
                  + (reconciler.skipped > 0 ? "; \(reconciler.skipped) contents with a job in flight left alone" : ""))
            if open > 0 { throw ExitCode(2) }
        }
    }
}
