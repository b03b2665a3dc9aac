import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

// The call shapes the worker, reconcile and `relocator checksum` (Sources/relocator) used before
// `move(_:hooks:)`, `LevelRoot` and `Checksum`, kept so that they build and behave as before
// (SHA-256, bare hex) until they move to the new API; then this file goes. Each maps onto the new
// code, so the old callers get the safe resolution too.

extension MoveRequest {
    /// Levels named by their directories.
    public init(filename: Filename, sourceDirectory: String, targetDirectory: String, otherDirectories: [String] = [],
                cid: Int64, gen: Int64, expectedChecksum: String? = nil, stalePart: String? = nil) {
        self.init(filename: filename, source: LevelPlace(level: sourceDirectory, directory: sourceDirectory),
                  target: LevelPlace(level: targetDirectory, directory: targetDirectory),
                  others: otherDirectories.map { LevelPlace(level: $0, directory: $0) }, cid: cid, gen: gen, stalePart: stalePart)
        recordedChecksumText = expectedChecksum
    }
}

/// The old worker hands `result.checksum` to a `String` parameter: where a `String` is wanted,
/// this answers the bare hex it recorded before (SHA-256 from the old `move` below); everywhere
/// else `checksum` is the stored `Checksum`.
public protocol LegacyChecksumText {}

extension MoveResult: LegacyChecksumText {}

extension LegacyChecksumText where Self == MoveResult {
    public var checksum: String {
        let stored: KeyPath<MoveResult, Checksum> = \.checksum
        return self[keyPath: stored].hex
    }
}

extension MoveError.Kind {
    /// The old name of `ioError`.
    public static var io: MoveError.Kind { .ioError }
}

extension FileMover {
    /// `move(_:hooks:)` with SHA-256 and the checksum as bare hex, as recorded before.
    public func move(_ request: MoveRequest, beforeCopy: (String) throws -> Void, beforePublish: (String, Int64) throws -> Void,
                     shouldStop: () -> Bool) throws -> MoveResult {
        var request = request
        if let text = request.recordedChecksumText {
            do {
                request.expectedChecksum = try Checksum(parsing: text)
            } catch {
                throw MoveError(.destinationConflict, "the checksum recorded for this job is unreadable (\(error)); nothing moved")
            }
        }
        var mover = self
        mover.algorithm = .sha256
        return try withoutActuallyEscaping(beforeCopy) { beforeCopy in
            try withoutActuallyEscaping(beforePublish) { beforePublish in
                try withoutActuallyEscaping(shouldStop) { shouldStop in
                    let hooks = MoveHooks(recordPart: beforeCopy, willPublish: { try beforePublish($0.hex, $1) }, shouldStop: shouldStop)
                    return try mover.move(request, hooks: hooks)
                }
            }
        }
    }

    /// SHA-256 of a file, lower-case hex.
    public func checksum(of path: String) throws -> String {
        try checksum(of: path, algorithm: .sha256).hex
    }

    /// Removes one of several copies that the caller verified identical, and syncs its directory:
    /// only a regular file (a link at the end is refused).
    public func removeVerifiedDuplicate(_ path: String) throws {
        guard let slash = path.lastIndex(of: "/") else { throw MoveError(.invalidFilename, "\(path) is not an absolute path") }
        let directoryPath = slash == path.startIndex ? "/" : String(path[..<slash])
        let name = String(path[path.index(after: slash)...])
        let directory: Descriptor
        do {
            directory = Descriptor(try FileDescriptor.open(FilePath(directoryPath), .readOnly, options: [.directory, .closeOnExec]),
                                   display: directoryPath)
        } catch {
            throw MoveError.system("cannot open the directory", directoryPath, error)
        }
        switch Linux.status(of: name, in: directory.fd) {
        case .success(nil): return
        case .success(let status?) where status.isRegularFile: break
        case .success(let status?): throw MoveError(.notRegularFile, "\(path) is \(status.typeDescription); left alone")
        case .failure(let error): throw MoveError.system("cannot stat", path, error)
        }
        switch Linux.unlink(directory.fd, name) {
        case .success, .failure(.noSuchFileOrDirectory): break
        case .failure(let error): throw MoveError.system("cannot remove", path, error)
        }
        try directory.sync()
    }
}
