import FileMover
import Logging
import RelocatorCore

/// What a worker and reconcile do with the level directories they open, before anything else
/// (`LevelReadiness`): a level never seen initialised gets `.relocator/` and is recorded as seen;
/// one that has `.relocator/` is recorded as seen; one seen before that lacks it (a bare
/// mountpoint) is withdrawn — nothing is moved into or out of it, nothing created in it.
public enum LevelPreparation {
    /// What `prepare` found.
    public struct Outcome: Sendable, Equatable {
        /// Levels out of service, with why.
        public var withdrawn: [String: String] = [:]
        /// Levels never seen whose `.relocator/` could not be created (a read-only disk, a directory
        /// this user may not write), with why: used as before, their moves fail with that error
        /// until it can be; recorded as seen once it exists.
        public var notInitialised: [String: String] = [:]

        /// Logs each level never seen whose `.relocator/` could not be created (a worker's warning).
        func warnNotInitialised(_ logger: Logger) {
            for (level, why) in notInitialised.sorted(by: { $0.key < $1.key }) {
                logger.warning("cannot create \(ReservedDirectory.name)/ in level '\(level)' yet (\(why)); its moves fail until it can be")
            }
        }
    }

    /// Prepares every root. `changing` false (reconcile without `--fix`): nothing is written, on
    /// disk or in the queue — a level never seen is looked at as it is, without `.relocator/`
    /// created in it or its name recorded as seen (a dry run on a disk not mounted yet must not
    /// make its bare mountpoint look like the level).
    @discardableResult
    public static func prepare(_ roots: [LevelRoot], _ queue: any JobQueueing, changing: Bool = true) throws -> Outcome {
        guard case .names(let seen) = try queue.control(.levelsSeen(adding: [])) else { return Outcome() }
        var ready: [String] = []
        var outcome = Outcome()
        for root in roots.sorted(by: { $0.level < $1.level }) {
            let present: Bool
            do {
                present = try root.hasReservedDirectory()
            } catch {
                // Not knowable now (a link planted there, an I/O error): not used meanwhile.
                let reason = "\(error)"
                root.withdraw(because: reason)
                outcome.withdrawn[root.level] = reason
                continue
            }
            switch LevelReadiness.of(hasReservedDirectory: present, seenBefore: seen.contains(root.level)) {
            case .ready:
                root.withdraw(because: nil)
                ready.append(root.level)
            case .initialise where !changing:
                continue
            case .initialise:
                do {
                    try root.initialise()
                    ready.append(root.level)
                } catch {
                    outcome.notInitialised[root.level] = "\(error)"
                }
            case .unavailable:
                let reason = LevelReadiness.reason(level: root.level, directory: root.directory)
                root.withdraw(because: reason)
                outcome.withdrawn[root.level] = reason
            }
        }
        let unseen = ready.filter { !seen.contains($0) }
        if changing, !unseen.isEmpty { _ = try queue.control(.levelsSeen(adding: unseen)) }
        return outcome
    }

    /// Opens a level whose directory did not answer when the worker started (`HeldLevels`'
    /// unopened levels), once it answers: the directory is opened (this call waits while it does not
    /// answer: on the level's own thread), checked against the others as at the start (not the
    /// same directory as another level, nor inside one), prepared as at the start — `.relocator/`
    /// made in a level never seen, a bare mountpoint withdrawn — and held from then on. What stops it
    /// is kept as why the level is out of service, and it is tried again at the next check.
    /// `queue` opens a queue session (closed here) once the directory is open and checked.
    public static func openLate(_ held: HeldLevels, level: String, queue: () -> any JobQueueSession, logger: Logger) {
        guard let place = held.unopenedPlace(level) else { return }
        do {
            let root = try LevelRoot(place)
            // Only this level's disk is looked at: the others as resolved when they were opened
            // (one that hangs now holds up nothing here).
            let resolved = try resolveLevel(level, directory: place.directory)
            guard resolved.identity == root.identity else {
                throw ConfigurationError(setting: "RELOCATOR_LEVELS", expected: "level '\(level)' (\(place.directory)): the directory changed while it was opened")
            }
            try held.claim(resolved)
            let session = queue()
            defer { session.close() }
            try prepare([root], session).warnNotInitialised(logger)
            held.adopt(root)
            logger.notice("level '\(level)' answers: its directory \(place.directory) is open")
        } catch {
            held.keepUnopened(level, because: "its directory \(place.directory), which did not answer at the start, cannot be opened yet: \(error)")
        }
    }

    /// A withdrawn level is back in service once its directory holds `.relocator/`: the directory
    /// held (`relocator levels init` on it), or the one its path names now (its disk mounted since
    /// the start), which is held from then on — nothing was ever done in the one held before.
    /// Returns the levels taken back. `level`: that level's only.
    @discardableResult
    public static func recheck(_ held: HeldLevels, level: String? = nil) -> [String] {
        var back: [String] = []
        for root in held.roots.values where root.withdrawn != nil && (level == nil || root.level == level) {
            if (try? root.hasReservedDirectory()) == true {
                root.withdraw(because: nil)
                back.append(root.level)
                continue
            }
            guard let mounted = try? LevelRoot(root.place), (try? mounted.hasReservedDirectory()) == true else { continue }
            held.replace(mounted)
            back.append(root.level)
        }
        return back
    }
}
