#if canImport(Glibc)
import Glibc
#endif

/// Why a move failed, classified so the worker knows whether to retry. The message names the file
/// and the system error, so an operator can act on it.
public struct MoveError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case invalidFilename = "invalid filename"
        case sourceMissing = "source missing"
        case notRegularFile = "not a regular file"
        case destinationConflict = "destination conflict"
        case noSpace = "no space"
        case permission = "permission denied"
        case readOnly = "read-only filesystem"
        case io = "I/O error"
        case checksumMismatch = "checksum mismatch"
        case cancelled
    }

    public var kind: Kind
    public var message: String
    public var errno: Int32?

    public init(_ kind: Kind, _ message: String, errno: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.errno = errno
    }

    /// Permanent failures go straight to the dead-letter list; the others are retried (an operator
    /// can free space, fix permissions or remount). A checksum mismatch is retried once; the worker
    /// makes a repeated one permanent.
    public var isPermanent: Bool {
        switch kind {
        case .invalidFilename, .sourceMissing, .notRegularFile, .destinationConflict: return true
        case .noSpace, .permission, .readOnly, .io, .checksumMismatch, .cancelled: return false
        }
    }

    public var description: String { "\(kind.rawValue): \(message)" }

    /// A failed system call on `path`, classified by errno.
    static func system(_ operation: String, _ path: String, errno code: Int32) -> MoveError {
        let kind: Kind
        switch code {
        case ENOSPC, EDQUOT, EFBIG: kind = .noSpace
        case EACCES, EPERM: kind = .permission
        case EROFS: kind = .readOnly
        case ELOOP: kind = .notRegularFile
        default: kind = .io
        }
        let reason = code == ELOOP ? "is a symbolic link" : String(cString: strerror(code))
        return MoveError(kind, "\(operation) \(path): \(reason) (\(errnoName(code)))", errno: code)
    }

    static func errnoName(_ code: Int32) -> String {
        switch code {
        case ENOSPC: return "ENOSPC"
        case EDQUOT: return "EDQUOT"
        case EFBIG: return "EFBIG"
        case EACCES: return "EACCES"
        case EPERM: return "EPERM"
        case EROFS: return "EROFS"
        case ENOENT: return "ENOENT"
        case EXDEV: return "EXDEV"
        case EIO: return "EIO"
        case ELOOP: return "ELOOP"
        case EEXIST: return "EEXIST"
        case ENOTDIR: return "ENOTDIR"
        case EISDIR: return "EISDIR"
        default: return "errno \(code)"
        }
    }
}
