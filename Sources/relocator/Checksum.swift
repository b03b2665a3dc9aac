import ArgumentParser
import FileMover
import Foundation
import RelocatorCore

extension Relocator {
    struct Checksum: ParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the checksum of files as the workers compute it, in sha256sum's format.",
            discussion: """
                xxh128 is the hash `xxhsum -H2` prints, sha256 the one `sha256sum` prints. A file that cannot be read \
                is reported and the others are still hashed; the exit status is then 1.
                """)
        @OptionGroup var logging: LogOptions
        @Option(help: "xxh128 (the workers' default) or sha256.") var algorithm: ChecksumAlgorithm = .xxh128
        @Argument(help: "Files ('-' for standard input).") var files: [String]

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("name at least one file ('-' for standard input)") }
        }

        func run() throws {
            let mover = FileMover()
            var failed = 0
            for file in files {
                do {
                    let sum = file == "-" ? try Self.standardInput(mover, algorithm) : try mover.checksum(of: file, algorithm: algorithm)
                    print(Self.line(sum.hex, file))
                } catch let error as MoveError {
                    failed += 1
                    Self.report(error.message)
                } catch {
                    failed += 1
                    Self.report(FailureReport.line(error))
                }
            }
            if failed > 0 {
                throw CommandFailure("\(failed) of \(files.count) file\(files.count == 1 ? "" : "s") could not be read")
            }
        }

        /// sha256sum's line: a name with a backslash, a line feed or a carriage return has them
        /// escaped as sha256sum writes them (`\\`, `\n`, `\r`) and begins the line with a
        /// backslash, so that `sha256sum -c` reads it back; a tab is written as it is, as
        /// sha256sum does. Other control characters and the marks that reorder or hide text are
        /// escaped as every name the command line shows (`Shown.text`: `\u{1B}`), which sha256sum
        /// does not read back: such a name never reaches a terminal as it is.
        static func line(_ hex: String, _ file: String) -> String {
            var shown = ""
            for scalar in file.unicodeScalars {
                if scalar == "\t" { shown.unicodeScalars.append(scalar) } else { shown += Shown.text(String(scalar)) }
            }
            return (shown == file ? "" : "\\") + "\(hex)  \(shown)"
        }

        private static func report(_ message: String) {
            StandardError.write("relocator checksum: \(FailureReport.oneLine(message))\n")
        }

        /// Standard input: hashed in place when it is a regular file, else copied to an unlinked-on-exit
        /// temporary file first (the mover hashes regular files only).
        static func standardInput(_ mover: FileMover, _ algorithm: ChecksumAlgorithm) throws -> RelocatorCore.Checksum {
            var info = stat()
            if fstat(STDIN_FILENO, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                return try mover.checksum(of: "/proc/self/fd/0", algorithm: algorithm)
            }
            let directory = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
            var template = Array("\(directory)/relocator-stdin-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { throw CommandFailure("cannot make a temporary file in \(directory) for standard input: \(String(cString: strerror(errno)))") }
            let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            defer {
                close(fd)
                unlink(path)
            }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw CommandFailure("cannot read standard input: \(String(cString: strerror(errno)))")
                }
                if count == 0 { break }
                var written = 0
                while written < count {
                    let result = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + written, count - written) }
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw CommandFailure("cannot write the copy of standard input to \(directory): \(String(cString: strerror(errno)))")
                    }
                    written += result
                }
            }
            return try mover.checksum(of: path, algorithm: algorithm)
        }
    }
}

extension ChecksumAlgorithm: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(rawValue: argument)
    }

    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
