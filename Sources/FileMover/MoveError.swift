import SystemPackage

/// Why a move failed, classified so the worker knows whether to retry. The description is one line,
/// `<code>: <message>`; the message names the file (as `<level>/<filename>`) and the system error,
/// so an operator can act on it.
public struct MoveError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Snake-case codes, recorded in the job's `last_error` and shown by `dlq list`.
    public enum Kind: String, Sendable, CaseIterable {
        /// The filename is absolute, has `..`, `.`, empty components or NUL.
        case invalidFilename = "invalid_filename"
        /// A symbolic link on the filename's way (or at its end), or two levels that are one directory.
        case unsafePath = "unsafe_path"
        /// A level without a directory on this worker.
        case unknownLevel = "unknown_level"
        /// The file is on no level's disk.
        case sourceMissing = "source_missing"
        /// The source is a directory, a device, a FIFO…
        case notRegularFile = "not_regular_file"
        /// The destination holds other bytes, or is not a regular file.
        case destinationConflict = "destination_conflict"
        /// The source was written to, replaced or removed while it was being moved.
        case sourceChanged = "source_changed"
        case noSpace = "no_space"
        case permissionDenied = "permission_denied"
        case readOnly = "read_only"
        case ioError = "io_error"
        /// The copy read back from the device differs from what was read from the source.
        case checksumMismatch = "checksum_mismatch"
        /// `MoveHooks.shouldStop` said stop (shutdown).
        case cancelled
        /// `MoveHooks.willPublish` said the job is no longer this worker's: not a failure; the move
        /// stopped before publishing and removed its temporary file.
        case leaseLost = "lease_lost"
        /// Another delivery holds the content's lock on this host: not a failure; nothing was done,
        /// and the job waits (deferred) without counting an attempt.
        case contentLocked = "content_locked"
        /// A level's directory is no longer the one checked when the worker started (unmounted,
        /// remounted, replaced): not a failure of the job; it waits, and the worker takes the level
        /// out of service until it is back.
        case levelUnavailable = "level_unavailable"
    }

    public var kind: Kind
    public var message: String
    /// The system call's error, when one failed.
    public var systemError: Errno?

    public init(_ kind: Kind, _ message: String, systemError: Errno? = nil) {
        self.kind = kind
        self.message = message
        self.systemError = systemError
    }

    /// Permanent failures go straight to the dead-letter list; the others are retried (an operator
    /// can free space, fix permissions or remount; a changed source is copied again). A checksum
    /// mismatch is retried once; the worker makes a repeated one permanent.
    public var isPermanent: Bool {
        switch kind {
        case .invalidFilename, .unsafePath, .unknownLevel, .sourceMissing, .notRegularFile, .destinationConflict:
            return true
        case .sourceChanged, .noSpace, .permissionDenied, .readOnly, .ioError, .checksumMismatch, .cancelled, .leaseLost,
             .contentLocked, .levelUnavailable:
            return false
        }
    }

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
