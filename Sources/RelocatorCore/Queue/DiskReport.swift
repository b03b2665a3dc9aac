/// Each level directory's size and free space as a worker's `statvfs` saw it, carried in its
/// heartbeat: what placement decides watermarks and room from.
public struct DiskReport: Sendable, Equatable {
    public struct Usage: Sendable, Equatable {
        /// Bytes in use (blocks minus free blocks), as `df`'s Used.
        public var used: Int64
        /// Bytes an unprivileged writer may still use (`f_bavail`), as `df`'s Avail: the free
        /// blocks the filesystem reserves for root are not in it.
        public var free: Int64
        /// The filesystem's size, as `df`'s Size. The fill is `used / (used + free)`, not
        /// `used / size` (`Placement.Usage`).
        public var size: Int64
        /// The device of the filesystem holding the level's directory on the worker's host (its
        /// `st_dev`); nil when not known (a report from an older worker). Two levels whose
        /// directories one worker finds on one device share a disk: moving contents between them
        /// frees nothing on it.
        public var filesystem: UInt64?

        public init(used: Int64, free: Int64, size: Int64, filesystem: UInt64? = nil) {
            self.used = used
            self.free = free
            self.size = size
            self.filesystem = filesystem
        }
    }

    public var levels: [String: Usage]

    public init(levels: [String: Usage]) {
        self.levels = levels
    }
}

extension DiskReport {
    /// Whether this report puts the directories of `a` and `b` on one filesystem.
    public func sameFilesystem(_ a: String, _ b: String) -> Bool {
        guard let first = levels[a]?.filesystem, let second = levels[b]?.filesystem else { return false }
        return first == second
    }
}
