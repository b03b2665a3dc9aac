import Foundation

/// Every entry under a directory (not following links) with what it holds: a file's SHA-256
/// (coreutils), a link's target, `dir` for a directory. Two equal snapshots mean nothing was
/// created, removed or changed there.
public struct DirectorySnapshot: Equatable, CustomStringConvertible {
    public private(set) var entries: [String: String] = [:]

    public init(_ root: String) throws {
        var pending = [""]
        while let relative = pending.popLast() {
            let path = relative.isEmpty ? root : root + "/" + relative
            for name in try FileManager.default.contentsOfDirectory(atPath: path) {
                let child = relative.isEmpty ? name : relative + "/" + name
                let full = root + "/" + child
                var info = stat()
                guard lstat(full, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    entries[child] = "dir"
                    pending.append(child)
                case S_IFLNK:
                    entries[child] = "link → " + (try FileManager.default.destinationOfSymbolicLink(atPath: full))
                case S_IFREG:
                    entries[child] = try TestFiles.sha256(full)
                default:
                    entries[child] = "other"
                }
            }
        }
    }

    public var description: String {
        entries.keys.sorted().map { "\($0): \(entries[$0]!)" }.joined(separator: "\n")
    }
}
