import RelocatorCore
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The `*at` system calls the mover makes, with errors as swift-system's `Errno` and EINTR retried.
/// swift-system covers descriptors, reads, writes and `fstat`/`fstatat`; it has no `openat`,
/// `openat2`, `mkdirat`, `linkat`, `unlinkat` or `renameat2`, and Glibc's Swift module lacks the GNU
/// and Linux-only ones (`openat2`, `renameat2`, `strerrorname_np`, `AT_EMPTY_PATH`), declared here.
enum Linux {
    // linux/openat2.h
    static let resolveNoMagicLinks: UInt64 = 0x02
    static let resolveNoSymlinks: UInt64 = 0x04
    static let resolveBeneath: UInt64 = 0x08
    /// `SYS_openat2`: the same number on every architecture (the unified table of Linux 5.1+).
    static let openat2Number = 437
    // fcntl.h, GNU
    static let atEmptyPath: Int32 = 0x1000
    // stdio.h, GNU
    static let renameNoReplace: UInt32 = 1

    /// Set once `openat2` answered ENOSYS (a kernel before 5.6): every later lookup walks the
    /// components with `openat(O_NOFOLLOW)` instead.
    static let openat2Missing = Atomic<Bool>(false)

    /// Runs a call that returns -1 and sets errno on failure, again after EINTR.
    static func call(_ body: () -> Int32) -> Result<Int32, Errno> {
        while true {
            let result = body()
            if result >= 0 { return .success(result) }
            let code = Errno(rawValue: errno)
            if code != .interrupted { return .failure(code) }
        }
    }

    /// `openat2(directory, path, {flags, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS})`:
    /// `path` resolved inside `directory`, failing with ELOOP at any symbolic link and EXDEV on a way out.
    static func openBeneath(_ directory: FileDescriptor, _ path: String, flags: Int32) -> Result<FileDescriptor, Errno> {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 3) { how in
            how[0] = UInt64(UInt32(bitPattern: flags))
            how[1] = 0
            how[2] = resolveBeneath | (Mutant.followSymlinks.isActive ? 0 : resolveNoSymlinks) | resolveNoMagicLinks
            return path.withCString { name in
                call {
                    Int32(truncatingIfNeeded: rawSyscall(openat2Number, Int(directory.rawValue), Int(bitPattern: name),
                                                         Int(bitPattern: how.baseAddress), 3 * MemoryLayout<UInt64>.size))
                }
            }.map { FileDescriptor(rawValue: $0) }
        }
    }

    static func openAt(_ directory: FileDescriptor, _ name: String, flags: Int32, mode: mode_t = 0) -> Result<FileDescriptor, Errno> {
        call { openat(directory.rawValue, name, flags | O_CLOEXEC, mode) }.map { FileDescriptor(rawValue: $0) }
    }

    static func makeDirectory(_ directory: FileDescriptor, _ name: String, mode: mode_t = 0o755) -> Result<Void, Errno> {
        call { mkdirat(directory.rawValue, name, mode) }.map { _ in () }
    }

    /// Unlinks `name` in `directory` (a file; `removeDirectory` for an empty directory).
    static func unlink(_ directory: FileDescriptor, _ name: String, removeDirectory: Bool = false) -> Result<Void, Errno> {
        call { unlinkat(directory.rawValue, name, removeDirectory ? AT_REMOVEDIR : 0) }.map { _ in () }
    }

    /// Gives the open file `file` the name `name` in `directory`, never replacing a name: a hard
    /// link made from the descriptor, so the name gets the very inode that was checked.
    /// `/proc/self/fd/N` first (any user), `AT_EMPTY_PATH` when /proc is missing (root only).
    static func link(_ file: FileDescriptor, into directory: FileDescriptor, as name: String) -> Result<Void, Errno> {
        let result = call { linkat(AT_FDCWD, "/proc/self/fd/\(file.rawValue)", directory.rawValue, name, AT_SYMLINK_FOLLOW) }
        if case .failure(.noSuchFileOrDirectory) = result, access("/proc/self/fd", F_OK) != 0 {
            return call { linkat(file.rawValue, "", directory.rawValue, name, atEmptyPath) }.map { _ in () }
        }
        return result.map { _ in () }
    }

    /// `renameat2(…, RENAME_NOREPLACE)`: fails with EEXIST rather than replace a file.
    static func renameNoReplace(_ from: FileDescriptor, _ name: String, to: FileDescriptor, _ newName: String) -> Result<Void, Errno> {
        call { rawRenameat2(from.rawValue, name, to.rawValue, newName, renameNoReplace) }.map { _ in () }
    }

    static func sync(_ file: FileDescriptor) -> Result<Void, Errno> {
        call { fsync(file.rawValue) }.map { _ in () }
    }

    /// `TMPFS_MAGIC` (linux/magic.h).
    static let tmpfsMagic = 0x0102_1994

    /// `EXT4_SUPER_MAGIC` (also ext2 and ext3), `XFS_SUPER_MAGIC`, `BTRFS_SUPER_MAGIC` (linux/magic.h).
    static let ext4Magic = 0xEF53, xfsMagic = 0x5846_5342, btrfsMagic = 0x9123_683E

    /// Whether the open file is on a tmpfs (`fstatfs`'s `f_type`; false when it cannot tell).
    static func isTmpfs(_ file: FileDescriptor) -> Bool {
        fileSystemType(file) == tmpfsMagic
    }

    /// The open file's file system's magic number (`fstatfs`'s `f_type`); nil when it cannot tell.
    static func fileSystemType(_ file: FileDescriptor) -> Int? {
        // struct statfs is 120 bytes on 64-bit Linux and begins with `f_type`, a machine word.
        withUnsafeTemporaryAllocation(byteCount: 256, alignment: 8) { buffer in
            guard call({ rawFstatfs(file.rawValue, buffer.baseAddress!) }) == .success(0) else { return nil }
            return buffer.load(as: Int.self)
        }
    }

    /// `fstatat(directory, name, AT_SYMLINK_NOFOLLOW)`; nil when there is no such name.
    static func status(of name: String, in directory: FileDescriptor) -> Result<Stat?, Errno> {
        do {
            return .success(try Stat(FilePath(name), relativeTo: directory, flags: .symlinkNoFollow))
        } catch .noSuchFileOrDirectory {
            return .success(nil)
        } catch {
            return .failure(error)
        }
    }

    /// `ENOSPC`, `EACCES`… for messages.
    static func errorName(_ error: Errno) -> String {
        guard let name = rawErrorName(error.rawValue) else { return "errno \(error.rawValue)" }
        return String(cString: name)
    }
}

/// An open file or directory that closes when released. `display` names it in messages
/// (`gold/movies/2024`).
final class Descriptor {
    let fd: FileDescriptor
    let display: String
    private var closesOnRelease = true
    /// What owns `fd` when this one only borrows it (kept alive, so that `fd` stays open for
    /// as long as this is used).
    private let owner: AnyObject?

    init(_ fd: FileDescriptor, display: String) {
        self.fd = fd
        self.display = display
        owner = nil
    }

    /// Whether this only borrows its owner's descriptor (`init(borrowing:from:display:)`).
    var isBorrowed: Bool { owner != nil }

    /// `owner`'s descriptor, never closed through this one: no system call to make it. Not for
    /// listing (a listing moves the offset of the open file description, which is `owner`'s).
    init(borrowing fd: FileDescriptor, from owner: AnyObject, display: String) {
        self.fd = fd
        self.display = display
        self.owner = owner
        closesOnRelease = false
    }

    deinit {
        // Files written by the mover are fsynced before anything depends on them, and the rest
        // were only read: a failing close loses nothing here.
        if closesOnRelease { _ = Glibc.close(fd.rawValue) }
    }

    /// For a file whose last name was removed: its last close frees its blocks, which takes
    /// as long as `rm` (seconds per GiB on a filesystem mounted with `discard`), so it happens
    /// on `BlockingExecutor.shared` while the move returns. Do not use the descriptor after this.
    func closeInBackground() {
        guard owner == nil else { return }  // borrowed: its owner closes it
        closesOnRelease = false
        RemovedFiles.close(fd)
    }
}

/// The background closes of `Descriptor.closeInBackground`. At most `limit` run at once: the
/// oldest is waited for before another starts, so a worker moving many big files keeps pace with
/// the kernel and holds few descriptors. (The last few are never waited for: `wait` only hands
/// back the result of `close`, which nobody needs.)
enum RemovedFiles {
    static let limit = 4
    private static let closing = Mutex<[BlockingExecutor.Pending<Int32>]>([])

    static func close(_ fd: FileDescriptor) {
        let started = BlockingExecutor.shared.start { Glibc.close(fd.rawValue) }
        let oldest = closing.withLock { list -> BlockingExecutor.Pending<Int32>? in
            list.append(started)
            return list.count > limit ? list.removeFirst() : nil
        }
        do {
            // The result of a close of a file that is gone and was only read tells nothing.
            _ = try oldest?.wait()
        } catch {
            // `close` does not throw.
        }
    }

    /// Waits for every close started so far.
    static func waitForCloses() {
        for pending in closing.withLock({ list in defer { list.removeAll() }; return list }) {
            do {
                _ = try pending.wait()
            } catch {
                // `close` does not throw.
            }
        }
    }
}

extension Descriptor {
    func stat() throws -> Stat {
        do { return try fd.stat() } catch { throw MoveError.system("cannot stat", display, error) }
    }

    func sync() throws {
        if case .failure(let error) = Linux.sync(fd) { throw MoveError.system("cannot fsync", display, error) }
    }
}

/// A file's identity and the parts of its status that change when it is written to.
struct FileIdentity: Equatable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: timespec
    var changed: timespec

    init(_ status: Stat) {
        device = UInt64(status.deviceID.rawValue)
        inode = UInt64(status.inode.rawValue)
        size = status.size
        modified = status.st_mtim
        changed = status.st_ctim
    }

    func isSameFile(as other: FileIdentity) -> Bool { device == other.device && inode == other.inode }

    static func == (a: FileIdentity, b: FileIdentity) -> Bool {
        a.isSameFile(as: b) && a.size == b.size
            && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
            && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
    }
}

extension Stat {
    var isSymbolicLink: Bool { type == .symbolicLink }
    var isRegularFile: Bool { type == .regular }
    var isDirectory: Bool { type == .directory }

    /// `a directory`, `a FIFO`… for messages.
    var typeDescription: String {
        switch type {
        case .regular: return "a regular file"
        case .directory: return "a directory"
        case .symbolicLink: return "a symbolic link"
        case .fifo: return "a FIFO"
        case .socket: return "a socket"
        case .characterSpecial: return "a character device"
        case .blockSpecial: return "a block device"
        default: return "not a regular file"
        }
    }
}

// Glibc's `syscall` is variadic (not callable from Swift); every argument here is a machine word,
// passed in registers as the C calling convention does.
@_silgen_name("syscall")
private func rawSyscall(_ number: Int, _ a: Int, _ b: Int, _ c: Int, _ d: Int) -> Int

@_silgen_name("renameat2")
private func rawRenameat2(_ from: Int32, _ name: UnsafePointer<CChar>, _ to: Int32, _ newName: UnsafePointer<CChar>, _ flags: UInt32) -> Int32

@_silgen_name("fstatfs")
private func rawFstatfs(_ fd: Int32, _ buffer: UnsafeMutableRawPointer) -> Int32

@_silgen_name("strerrorname_np")
private func rawErrorName(_ code: Int32) -> UnsafePointer<CChar>?
