/// Whether a level directory may be used, from two facts: does it hold `.relocator/` (which a
/// worker, reconcile or `relocator levels init` creates), and was the level seen initialised
/// before (`KeySchema.control.levelsSeen`)? A level seen before whose directory lacks `.relocator/`
/// is a bare mountpoint (its disk not mounted) or a disk swapped for an empty one: nothing may be
/// moved into or out of it, and nothing created there, until it is mounted or deliberately
/// initialised again.
public enum LevelReadiness: Equatable, Sendable {
    /// In use; recorded as seen.
    case ready
    /// Never seen (a new installation, a new level): `.relocator/` is created and the level recorded.
    case initialise
    /// Seen before and `.relocator/` missing: out of service.
    case unavailable

    public static func of(hasReservedDirectory: Bool, seenBefore: Bool) -> LevelReadiness {
        if hasReservedDirectory { return .ready }
        return seenBefore ? .unavailable : .initialise
    }

    /// Why a level is `unavailable`, in log lines and reconcile's findings.
    public static func reason(level: String, directory: String) -> String {
        "\(directory) has no \(ReservedDirectory.name)/ although level '\(level)' was in use before: its disk is not mounted, or was swapped "
            + "for an empty one; mount it, or run `relocator levels init \(level)` to start it afresh"
    }
}
