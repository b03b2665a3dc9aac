/// Each level directory's size and free space as a worker's `statvfs` saw it, carried in its
/// heartbeat: what placement decides watermarks and room from.
public struct DiskReport: Sendable, Equatable {
    public struct Usage: Sendable, Equatable {
        /// Bytes in use (blocks minus free blocks, the reserved ones counted as used).
        public var used: Int64
        /// Bytes an unprivileged writer may still use (`f_bavail`).
        public var free: Int64
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
