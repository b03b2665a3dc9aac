/// Faults a test can inject; none in normal runs.
public struct MoveFaults: Sendable {
    /// Called after each step; may throw (or end the process) to simulate a crash there, or change
    /// the files to simulate another process.
    public var onStep: (@Sendable (MoveStep) throws -> Void)?
    /// Asked once per copy after the fsync: true flips one byte of the temporary file before it is
    /// read back, as a failing device would.
    public var corruptBeforeReadBack: (@Sendable () -> Bool)?
    /// Asked with the offset of each read of the source across filesystems, on the thread that
    /// reads it: true fails that read with EIO, as a failing device would.
    public var readFails: (@Sendable (Int64) -> Bool)?
    /// Told the path (as the kernel names the open descriptor) of every directory the mover
    /// fsyncs, so a test can check that what it created is durable.
    public var onDirectorySynced: (@Sendable (String) -> Void)?

    public init(onStep: (@Sendable (MoveStep) throws -> Void)? = nil, corruptBeforeReadBack: (@Sendable () -> Bool)? = nil,
                onDirectorySynced: (@Sendable (String) -> Void)? = nil, readFails: (@Sendable (Int64) -> Bool)? = nil) {
        self.onStep = onStep
        self.corruptBeforeReadBack = corruptBeforeReadBack
        self.onDirectorySynced = onDirectorySynced
        self.readFails = readFails
    }
}

/// The steps of a move, reported to `MoveFaults.onStep` (fault injection in tests).
public enum MoveStep: String, Sendable, CaseIterable {
    /// Across filesystems: the temporary file is written and hashed.
    case copied
    /// … and fsynced.
    case synced
    /// … and read back from the device with the same checksum.
    case verified
    /// The file has its final name.
    case published
    case targetDirectorySynced
    case sourceRemoved
    case sourceDirectorySynced
}
