import Foundation
import RelocatorCore

/// Where the servers that `Scripts/test` started are. A missing variable fails the test that
/// needs it (never skips it): run the tests through `Scripts/test`.
public enum TestEnvironment {
    public struct Missing: Error, CustomStringConvertible {
        public let variable: String
        public var description: String { "\(variable) is not set: run the tests with Scripts/test, which starts the servers" }
    }

    public static func value(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { throw Missing(variable: name) }
        return value
    }

    public static func redisURL() throws -> RedisURL {
        try RedisURL(parsing: value("RELOCATOR_TEST_REDIS_URL"), setting: "RELOCATOR_TEST_REDIS_URL")
    }

    /// The checkout's root, found from this file's path.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The built `relocator` binary: `$RELOCATOR_BIN`, else `.build/debug/relocator`.
    public static func relocatorBinary() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["RELOCATOR_BIN"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let url = packageRoot.appendingPathComponent(".build/debug/relocator")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw Missing(variable: "RELOCATOR_BIN (and \(url.path) was not built)")
        }
        return url
    }

    /// A name no other test uses: `prefix_<random hex>`.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
    }
}

/// A directory of its own for one test, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let url: URL

    /// Under the temporary directory, or under `parent` (`/dev/shm` for a second filesystem).
    public init(_ prefix: String = "relocator-test", under parent: String? = nil) throws {
        let base = parent.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory
        url = base.appendingPathComponent(TestEnvironment.uniqueName(prefix))
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public var path: String { url.path }

    /// Removes the directory and everything in it. A file may vanish while the tree is removed —
    /// SQLite deletes a database's `-wal` and `-shm` files when a pool closes its last connection
    /// in the background — and the removal then stops half way: it is tried again. What cannot be
    /// removed is said on standard error, never left behind silently.
    public func remove() {
        var failure: (any Error)?
        for _ in 0..<5 {
            do {
                try FileManager.default.removeItem(at: url)
                return
            } catch {
                failure = error
                var info = stat()
                if lstat(path, &info) != 0 && errno == ENOENT { return }
            }
        }
        FileHandle.standardError.write(Data("cannot remove the test directory \(path): \(failure.map { "\($0)" } ?? "")\n".utf8))
    }
}
