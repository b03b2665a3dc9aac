import RelocatorCore
#if canImport(Glibc)
import Glibc
#endif

extension DiskReport {
    /// Each level directory's usage now, from `statvfs`.
    public static func current(_ directories: LevelDirectories) -> DiskReport {
        var levels: [String: Usage] = [:]
        for level in directories.names {
            var info = statvfs()
            guard statvfs(directories.directory(of: level)!, &info) == 0 else { continue }
            // Counts the kernel gives, bounded before they are multiplied (nothing here may trap).
            func bytes(_ blocks: UInt64) -> Int64 {
                let (product, overflow) = Int64(clamping: blocks).multipliedReportingOverflow(by: Int64(clamping: info.f_frsize))
                return overflow ? .max : product
            }
            let used = info.f_blocks >= info.f_bfree ? info.f_blocks - info.f_bfree : 0
            levels[level] = Usage(used: bytes(UInt64(used)), free: bytes(UInt64(info.f_bavail)), size: bytes(UInt64(info.f_blocks)))
        }
        return DiskReport(levels: levels)
    }
}
