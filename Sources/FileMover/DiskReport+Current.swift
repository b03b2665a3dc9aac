import RelocatorCore
#if canImport(Glibc)
import Glibc
#endif

extension DiskReport {
    /// Each level directory's usage now, from `statvfs`.
    public static func current(_ directories: LevelDirectories) -> DiskReport {
        var levels: [String: Usage] = [:]
        for level in directories.names {
            levels[level] = usage(of: directories.directory(of: level)!)
        }
        return DiskReport(levels: levels)
    }

    /// The usage of the filesystem holding `directory` now, from `statvfs`, with its device; nil
    /// when it cannot be read.
    public static func usage(of directory: String) -> Usage? {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return nil }
        // Counts the kernel gives, bounded before they are multiplied (nothing here may trap).
        func bytes(_ blocks: UInt64) -> Int64 {
            let (product, overflow) = Int64(clamping: blocks).multipliedReportingOverflow(by: Int64(clamping: info.f_frsize))
            return overflow ? .max : product
        }
        let used = info.f_blocks >= info.f_bfree ? info.f_blocks - info.f_bfree : 0
        // (`f_fsid` is 0 on tmpfs, whatever the instance: the directory's device tells them apart.)
        var status = stat()
        let device = stat(directory, &status) == 0 ? UInt64(status.st_dev) : nil
        return Usage(used: bytes(UInt64(used)), free: bytes(UInt64(info.f_bavail)), size: bytes(UInt64(info.f_blocks)), filesystem: device)
    }
}
