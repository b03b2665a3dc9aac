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
            let unit = Int64(info.f_frsize)
            levels[level] = Usage(used: (Int64(info.f_blocks) - Int64(info.f_bfree)) * unit, free: Int64(info.f_bavail) * unit,
                                  size: Int64(info.f_blocks) * unit)
        }
        return DiskReport(levels: levels)
    }
}
