#if canImport(Glibc)
import Glibc
#endif

/// Deliberate defects of the safety code, for mutation testing: compiled into debug builds only
/// (`Mutant.isActive` is always false in a release build) and chosen at run time with
/// `RELOCATOR_MUTANT=<name>`, so that `Scripts/mutate` can run, for each one, the tests that must
/// fail — without rebuilding and without touching the work tree. A mutant that no test kills is a
/// guarantee nothing checks.
public enum Mutant: String, CaseIterable, Sendable {
    /// The source-changed check before publishing is skipped.
    case noSourceCheckBeforePublish = "no-source-check-before-publish"
    /// The copied file is not fsynced (its one fsync, after its attributes, before its read-back).
    case noCopyFsync = "no-copy-fsync"
    /// Names are resolved without RESOLVE_NO_SYMLINKS: a link inside the level is followed.
    case followSymlinks = "follow-symlinks"
    /// A count coalesced into a waiting job pushes its id onto the queue again.
    case pushCoalescedTwice = "push-coalesced-twice"
    /// Retries are due at once.
    case zeroBackoff = "zero-backoff"
    /// Moves do not take the content's lock.
    case noContentLock = "no-content-lock"
    /// The copy kept is not checked again before the source is removed.
    case noKeptCheck = "no-kept-check"
    /// `progress.lua` records for any delivery, whatever its token.
    case tokenIgnored = "token-ignored"
    /// `enqueue.lua` reverses or re-aims a job whose reaped delivery may still act.
    case fenceIgnored = "fence-ignored"
    /// New generations ignore the per-content counter (Redis time only).
    case gensIgnored = "gens-ignored"
    /// The copy is not read back from the device: the checksum computed in flight is trusted.
    case noReadBack = "no-read-back"
    /// The target directory is not fsynced after publishing.
    case noTargetDirectoryFsync = "no-target-directory-fsync"
    /// A filename inside the reserved directory `.relocator/` is accepted.
    case reservedNameAllowed = "reserved-name-allowed"
    /// A level whose path names another directory than the one held is still used.
    case levelCheckSkipped = "level-check-skipped"
    /// The source is removed without checking it is unchanged since the copy began.
    case noSourceCheckBeforeRemoval = "no-source-check-before-removal"
    /// `ack.lua` acknowledges for any delivery, whatever its token.
    case ackWithoutToken = "ack-without-token"
    /// `reconcile --fix` deletes files under an earlier version's temporary names instead of
    /// moving them aside.
    case legacyPartDeleted = "legacy-part-deleted"

    /// The mutant chosen for this process, nil in normal runs (and always in release builds).
    public static let active: Mutant? = {
        #if DEBUG
        guard let name = getenv("RELOCATOR_MUTANT") else { return nil }
        return Mutant(rawValue: String(cString: name))
        #else
        return nil
        #endif
    }()

    /// True when this mutant is the one chosen.
    @inline(__always)
    public var isActive: Bool { Mutant.active == self }
}
