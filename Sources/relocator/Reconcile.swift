import ArgumentParser
import FileMover
import Foundation
import RelocatorCore
import RelocatorServices

extension Relocator {
    struct Reconcile: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare the database with the disks and Redis; with --fix, repair what is safe.",
            discussion: """
                Finds: a content whose file sits on another level than the database says (wrong_level), a file on \
                two levels (duplicate when the copies are identical, conflict when they differ), a file on no level \
                (missing), a temporary .part file no move owns (stale_part), a job whose id Redis lost from the list \
                its status calls for (orphaned_job), a filename that cannot be moved safely (unsafe_filename) and two \
                contents naming one file (shared_filename). A level in use before whose directory has no .relocator/ (its \
                disk not mounted) is not looked at, and the contents the database places on it are left alone \
                (level_unavailable). A level whose directory is not on this host is another host's: the workers \
                that serve it (--transfer-listen) are asked before a content is called missing or misplaced; a content \
                they could not be asked about is unverified, and files of its name on several hosts' levels are \
                copies_on_hosts; what the database places on another host's level, with no file here, is left to \
                that host's reconcile. --fix sets the database to where the file really is, \
                removes verified duplicates and stale .part files, and puts orphaned jobs back on their lists; \
                conflicts and missing files are only reported. Safe beside running workers and from cron: a content \
                with a job in flight is left alone, and every other is held (no worker takes it) while it is fixed. \
                Without --fix the database is opened read-only. Exit status: 0 when nothing is left to do, 2 when \
                findings remain that need an operator.
                """)

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var logging: LogOptions

        @Option(help: "level=directory pairs, e.g. gold=/data/ssd,silver=/data/hdd (default: $RELOCATOR_LEVELS).")
        var levelDirs: String?

        @Option(help: "The secret file the workers share (their --transfer-secret-file), when they share one: the questions to other hosts' workers are signed with it. (default: none: unsigned, as the workers take them without --transfer-secret-file)")
        var transferSecretFile: String?

        @OptionGroup var transferTrust: TransferTrustOptions

        @Flag(help: "Repair what is safe to repair.")
        var fix = false

        @Flag(help: "Print JSON: {findings: [{kind, cid, detail, fixed}], fixed, need_attention, skipped_in_flight, skipped_unavailable, skipped_elsewhere}.")
        var json = false

        func run() async throws {
            let (all, setting) = try runtime.levelDirectories(flag: levelDirs)
            // A level whose directory does not answer (a stalled disk, a network filesystem whose
            // server is gone) is left alone, as one that stops answering during the run: the run
            // waits for a look at most the workers' level patience.
            let patience = Worker.levelPatience(heartbeatTTL: try runtime.heartbeatTTL())
            let silent = levelsNotAnswering(all, within: patience)
            // Levels whose directory is not on this host are other hosts': their workers are asked.
            let onThisHost = levelsOnThisHost(all.filter { silent[$0] == nil })
            // (No level here that answered: the directories are checked as given, and a missing one refused.)
            let directories = onThisHost.present.names.isEmpty ? all : all.filter { !onThisHost.absent.contains($0) }
            _ = try verifyLevelLayout(directories.filter { silent[$0] == nil }, setting: setting)
            let signingKey = try transferSecretFile.map(readTransferSigningKey)
            let trust = try transferTrust.trust()
            let service = try makeCommandService(runtime, database: database, access: fix ? .readWrite : .readOnly)
            defer { service.close() }
            var settings = Reconciler.Settings(directories: directories, fix: fix)
            settings.algorithm = try runtime.checksumAlgorithm()
            settings.remoteLevels = onThisHost.present.names.isEmpty ? [] : onThisHost.absent
            settings.transferSigningKey = signingKey
            settings.transferTrust = trust
            settings.lookPatience = patience
            settings.notAnswering = silent
            let progress = ProgressReporter(label: "reconcile", total: nil, unit: "contents")
            let json = self.json
            let reconciler = try await service.reconcile(
                settings,
                onFinding: { finding in if !json { print(Shown.message(finding.line)) } },
                onProgress: { done, all in
                    progress.setTotal(all)
                    progress.update(done)
                })
            progress.finish()
            let open = reconciler.findings.filter { $0.fixed == nil }.count
            if json {
                try JSONOutput.print(object: [
                    "findings": reconciler.findings.map { finding -> [String: Any] in
                        ["kind": finding.kind.rawValue, "cid": finding.cid.map { $0 as Any } ?? NSNull(), "detail": finding.detail,
                         "fixed": finding.fixed.map { $0 as Any } ?? NSNull()]
                    },
                    "fixed": reconciler.findings.count - open, "need_attention": open, "skipped_in_flight": reconciler.skipped,
                    "skipped_unavailable": reconciler.skippedUnavailable, "skipped_elsewhere": reconciler.skippedElsewhere,
                ])
            } else {
                print("\(reconciler.findings.count) findings, \(reconciler.findings.count - open) fixed, \(open) need attention"
                      + (reconciler.skipped > 0 ? "; \(reconciler.skipped) contents with a job in flight left alone" : "")
                      + (reconciler.skippedUnavailable > 0 ? "; \(reconciler.skippedUnavailable) contents on levels out of service left alone" : "")
                      + (reconciler.skippedElsewhere > 0 ? "; \(reconciler.skippedElsewhere) contents on other hosts' levels left to their hosts' reconcile" : ""))
            }
            if open > 0 { throw ExitCode(2) }
        }
    }
}
