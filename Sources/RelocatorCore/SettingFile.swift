import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file an option names (a key, a certificate, a secret), read whole when a command starts.
public enum SettingFile {
    /// Why a file could not be read: `<path>: cannot be read (<reason>)`.
    public struct Unreadable: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let reason: String
        public var description: String { "\(path): cannot be read (\(reason))" }
    }

    /// The bytes of `path`, or why they cannot be had (the system's word for it, or "not a
    /// readable file" for a directory and the like).
    public static func read(_ path: String) throws(Unreadable) -> [UInt8] {
        if let data = FileManager.default.contents(atPath: path) { return Array(data) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd < 0 else {
            close(fd)
            throw Unreadable(path: path, reason: "not a readable file")
        }
        throw Unreadable(path: path, reason: String(cString: strerror(errno)))
    }
}
