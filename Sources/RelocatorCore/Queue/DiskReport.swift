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

        public init(used: Int64, free: Int64, size: Int64) {
            self.used = used
            self.free = free
            self.size = size
        }
    }

    public var levels: [String: Usage]

    public init(levels: [String: Usage]) {
        self.levels = levels
    }
}
