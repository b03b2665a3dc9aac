import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The fsync of a source's directory that a move left to its caller (`MoveHooks.deferSourceDirectorySync`):
/// the worker syncs the directories of many finished moves at once — one fsync for every removal
/// made before it began — and acknowledges each move only after its directory was synced.
public final class PendingDirectorySync: @unchecked Sendable, Hashable {
    private let fd: FileDescriptor
    /// The directory as messages name it.
    public let display: String
    /// The directory's device and inode: moves with the same key share one fsync.
    public let key: String
    /// The level the directory is in: each level's syncs have a finisher of their own, so a disk
    /// whose fsync does not return holds up no other level's acknowledgements.
    public let root: LevelRoot
    private let faults: MoveFaults?

    init(_ directory: Descriptor, root: LevelRoot, faults: MoveFaults?) throws {
        let identity = FileIdentity(try directory.stat())
        let copy = fcntl(directory.fd.rawValue, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw MoveError.system("cannot keep open", directory.display, Errno(rawValue: errno)) }
        fd = FileDescriptor(rawValue: copy)
        display = directory.display
        key = "\(identity.device):\(identity.inode)"
        self.root = root
        self.faults = faults
    }

    deinit { _ = Glibc.close(fd.rawValue) }

    /// fsyncs the directory; then the fault hooks learn of it, as after the mover's own sync.
    public func sync() throws {
        if case .failure(let error) = root.syncing({ Linux.sync(fd) }) { throw MoveError.system("cannot fsync", display, error) }
        if let onDirectorySynced = faults?.onDirectorySynced { onDirectorySynced(LevelRoot.kernelPath(of: fd) ?? display) }
        try faults?.onStep?(.sourceDirectorySynced)
    }

    public static func == (a: PendingDirectorySync, b: PendingDirectorySync) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
