import RelocatorCore
import SystemPackage

/// Why a move failed, classified so the worker knows whether to retry. The description is one line,
/// `<code>: <message>`; the message names the file (as `<level>/<filename>`) and the system error,
/// so an operator can act on it.
public struct MoveError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The failure's code (`FailureReason`, in RelocatorCore: the vocabulary the queue records).
    public typealias Kind = FailureReason

    public var kind: Kind
    public var message: String
    /// The system call's error, when one failed.
    public var systemError: Errno?

    public init(_ kind: Kind, _ message: String, systemError: Errno? = nil) {
        self.kind = kind
        self.message = message
        self.systemError = systemError
    }

    /// Permanent failures go straight to the dead-letter list; the others are retried.
    public var isPermanent: Bool { kind.isPermanent }

    public var description: String { "\(kind.rawValue): \(message)" }

    /// A failed system call on `subject`, classified by its error:
    /// `cannot create gold/a/.b.relocator-7-1.part: No space left on device (ENOSPC)`.
    static func system(_ operation: String, _ subject: String, _ error: Errno) -> MoveError {
        let kind: Kind
        switch error {
        case .noSpace, .diskQuotaExceeded, .fileTooLarge: kind = .noSpace
        case .permissionDenied, .notPermitted: kind = .permissionDenied
        case .readOnlyFileSystem: kind = .readOnly
        case .tooManySymbolicLinkLevels: kind = .unsafePath
        default: kind = .ioError
        }
        return MoveError(kind, "\(operation) \(subject): \(error) (\(Linux.errorName(error)))", systemError: error)
    }

    /// The same, for swift-system's calls that throw untyped (their errors are `Errno`).
    static func system(_ operation: String, _ subject: String, _ error: any Error) -> MoveError {
        if let error = error as? Errno { return system(operation, subject, error) }
        return MoveError(.ioError, "\(operation) \(subject): \(error)")
    }

    /// A symbolic link where a filename must stay inside its level directory.
    static func symbolicLink(_ subject: String) -> MoveError {
        MoveError(.unsafePath, "\(subject) is a symbolic link; a filename must stay inside its level directory")
    }
}
