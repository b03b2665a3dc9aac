import ArgumentParser
import Foundation
import RelocatorCore
import RelocatorServices

/// A command failed for a reason the operator can act on. Printed as one line on standard error
/// (`Error: …`), exit status 1, without the usage (the command line itself was fine).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// How failures end a command: one line on standard error and a status.
///
/// - 0: success; 1: any failure of the work (`CommandFailure`, a server that is down, a file that
///   cannot be read…); 2: `reconcile` left findings; 64: a command line the parser refused (with
///   the subcommand's usage).
enum FailureReport {
    /// The one line for an error: server errors name the server, never an internal command
    /// (`redis 127.0.0.1:6379: cannot connect: Connection refused`); line breaks and other control
    /// characters are escaped (`Shown`).
    static func line(_ error: any Error) -> String {
        oneLine(Composition.unreachableServerLine(error) ?? String(describing: error))
    }

    /// A message on one line: trimmed, its control characters (a newline in a server message or a
    /// filename) escaped (`Shown.message`).
    static func oneLine(_ text: String) -> String {
        Shown.message(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Prints the error and ends the process. `ExitCode`, and what the parser ends with success
    /// (`--help` is run as a command that throws its text), keep their meaning.
    static func exit(_ error: any Error) -> Never {
        if error is ExitCode || Relocator.exitCode(for: error) == .success {
            Relocator.exit(withError: error)
        }
        switch error {
        case let validation as ValidationError:
            // An argument found wrong only while the command ran: one line, the usage status.
            printError(line(validation))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        default:
            printError(line(error))
            Foundation.exit(EXIT_FAILURE)
        }
    }

    /// `warning: …` on standard error: something skipped or unusual that did not stop the command.
    static func printWarning(_ message: String) {
        write("warning: \(oneLine(message))\n")
    }

    static func printError(_ message: String) {
        write("Error: \(message)\n")
    }

    private static func write(_ message: String) {
        StandardError.write(message)
    }
}

/// Standard error, written with `write(2)` in one call per text (after flushing standard
/// output, so the two stay in order on a terminal).
enum StandardError {
    static func write(_ text: String) {
        fflush(nil)
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // standard error is gone: there is nowhere left to say anything
                }
                offset += written
            }
        }
    }
}
