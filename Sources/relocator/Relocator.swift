import ArgumentParser
import SQLStore
import Foundation
import RelocatorCore

@main
struct Relocator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keeps content files on the right disk.",
        discussion: """
            Every command reads the environment (REDIS_URL, DATABASE_URL, RELOCATOR_LEVELS, RELOCATOR_PREFIX, \
            RELOCATOR_LOG_LEVEL, RELOCATOR_LOG_FORMAT…); its flags win. Exit status: 0 on success, 1 when the \
            work failed (one line on standard error), 2 when reconcile leaves findings, 64 for a command line \
            that cannot be parsed (with the usage).
            """,
        version: RelocatorVersion.string,
        subcommands: [
            Serve.self, WorkerCommand.self, CommitterCommand.self, Migrate.self, Enqueue.self, Status.self, DLQ.self,
            Levels.self, Contents.self, Relocations.self, Reconcile.self, Why.self, Plan.self, Pause.self, Resume.self, Checksum.self,
        ]
    )

    /// Parses the command line (a refused one prints the usage, exit 64), reads the logging
    /// settings, then runs the command; any failure of the run is one line on standard error.
    nonisolated static func main() async {
        if let problem = undecodableArgument() { FailureReport.exit(ValidationError(problem)) }
        let command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            let flag = (command as? LoggedCommand)?.logging.logFormat
            Logs.bootstrap(try LogSettings(flag: flag, environment: ProcessInfo.processInfo.environment))
            SessionLimits.setAnswerTimeout(milliseconds: try RuntimeOptions.parse([]).sqlTimeoutMilliseconds())
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var syncCommand = command
                try syncCommand.run()
            }
        } catch {
            FailureReport.exit(error)
        }
    }

    /// The first argument whose bytes are not UTF-8, said in one line. (The command line is
    /// otherwise decoded with replacement characters: a filename given so would name a file that
    /// is not there, and be stored as such.)
    static func undecodableArgument() -> String? {
        guard CommandLine.argc > 1 else { return nil }
        for index in 1..<Int(CommandLine.argc) {
            guard let argument = CommandLine.unsafeArgv[index], String(validatingCString: argument) == nil else { continue }
            var shown = ""
            for byte in UnsafeBufferPointer(start: UnsafeRawPointer(argument).assumingMemoryBound(to: UInt8.self), count: strlen(argument)).prefix(64) {
                shown += (0x20..<0x7f).contains(byte) && byte != UInt8(ascii: "\\") ? String(UnicodeScalar(byte)) : String(format: "\\x%02X", byte)
            }
            return "argument \(index) is not UTF-8 ('\(shown)'): every name and value must be UTF-8"
        }
        return nil
    }
}
