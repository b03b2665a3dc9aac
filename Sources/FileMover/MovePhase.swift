/// Where a move's time goes, phase by phase, for the cost breakdown of a job (the worker's
/// `relocator_move_phase_seconds` metric and `Scripts/bench`). A copy or a link that runs to its
/// end reports every moment of it in exactly one phase.
public enum MovePhase: String, Sendable, CaseIterable {
    /// Opening the level directories, removing stale temporary files, finding the file and the
    /// target's directories (creating them when missing).
    case prepare
    /// The worker's calls to the queue during the move (the temporary file's name, the checksum
    /// before publishing).
    case queue
    /// Creating the temporary file and reserving its blocks.
    case create
    /// Reading, hashing and writing the bytes (the source's hash, on one filesystem).
    case copy
    /// The fsync of the copied file (its one fsync: its bytes and its attributes).
    case fsync
    /// Reading the copy back from the device and comparing.
    case readBack = "read_back"
    /// Mode, owner and times of the source on the copy (set before its fsync).
    case attributes
    /// Giving the file its final name (a link or a rename), and the checks right before.
    case publish
    case targetDirectoryFsync = "target_directory_fsync"
    /// The checks before the source goes, and its removal.
    case removeSource = "remove_source"
    case sourceDirectoryFsync = "source_directory_fsync"
}

/// Lap times of one move: each lap ends a phase and starts the next.
struct PhaseClock {
    private var last = ContinuousClock.now
    private let report: ((MovePhase, Duration) -> Void)?

    init(_ report: ((MovePhase, Duration) -> Void)?) {
        self.report = report
    }

    /// The time since the last lap belongs to `phase`.
    mutating func lap(_ phase: MovePhase) {
        guard let report else { return }
        let now = ContinuousClock.now
        report(phase, now - last)
        last = now
    }
}
