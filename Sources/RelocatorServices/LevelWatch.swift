import FileMover
import Logging
import RelocatorCore
import Synchronization

/// Each level's checks — is its directory still the one held (or back in service), how full is
/// its disk — on a thread of its own, apart from the heartbeat. A level whose disk stops
/// answering (a hard NFS mount whose server is gone, a stalled device, a FUSE daemon that hangs)
/// then blocks only its own thread: the heartbeat goes on, so the worker is not taken for dead
/// and its jobs are not given to others while it lives, and a check that has not returned
/// within `patience` takes the level out of service ("not answering") until one returns.
final class LevelWatch: Sendable {
    /// What one check of a level found.
    struct Look: Sendable, Equatable {
        /// Why the level is out of service; nil when it is in service.
        var unavailable: String?
        /// Its disk's usage; nil when it could not be read.
        var usage: DiskReport.Usage?
    }

    private struct State: Sendable {
        var look = Look()
        /// When the check under way began; nil between checks.
        var since: ContinuousClock.Instant?
    }

    let names: [String]
    let interval: Duration
    let patience: Duration
    private let directories: [String: String]
    private let look: @Sendable (String) -> Look
    private let states: Mutex<[String: State]>
    private let started = Atomic<Bool>(false)
    /// How many levels' first checks returned; `allLooked` is raised once all did.
    private let firstLooks = Atomic<Int>(0)
    private let allLooked = StopSignal()
    private let stop = StopSignal()

    /// `look` checks one level (a test passes its own).
    init(levels names: [String], directories: [String: String], interval: Duration, patience: Duration, look: @escaping @Sendable (String) -> Look) {
        self.names = names.sorted()
        self.directories = directories
        self.interval = interval
        self.patience = patience
        self.look = look
        states = Mutex(Dictionary(uniqueKeysWithValues: names.map { ($0, State()) }))
    }

    /// The watch of a worker's held levels: a check opens a level not opened at the start once
    /// it answers (`LevelPreparation.openLate`, with a session of `queue`), rechecks a withdrawn
    /// level (back once its directory holds `.relocator/` again), then asks whether the level is
    /// in service and reads its disk's usage.
    convenience init(_ held: HeldLevels, _ directories: LevelDirectories, interval: Duration, patience: Duration,
                     queue: @escaping @Sendable () -> any JobQueueSession, logger: Logger) {
        var paths: [String: String] = [:]
        for level in directories.names { paths[level] = directories.directory(of: level) }
        let resolved = paths
        self.init(levels: directories.names, directories: paths, interval: interval, patience: patience) { level in
            LevelPreparation.openLate(held, level: level, queue: queue, logger: logger)
            LevelPreparation.recheck(held, level: level)
            return Look(unavailable: held.unavailable(level), usage: resolved[level].flatMap { DiskReport.usage(of: $0) })
        }
    }

    /// Checks every level, each on a thread of its own, and waits for these first checks (what a
    /// worker knows as it starts) at most `patience`: a level whose check has not returned by then
    /// is not answering, and holds up neither the start nor the other levels. Each thread then
    /// checks its level every `interval` until `end()`. Only the first call does anything.
    func start() {
        guard !started.exchange(true, ordering: .sequentiallyConsistent) else { return }
        // Each first check counts as under way from now: once the patience has passed, one that
        // has not returned is not answering.
        let now = ContinuousClock.now
        states.withLock { states in
            for level in names { states[level]?.since = now }
        }
        if names.isEmpty { allLooked.raise() }
        for level in names {
            BlockingExecutor.thread(named: "watch-\(level)") {
                self.check(level)
                if self.firstLooks.add(1, ordering: .sequentiallyConsistent).newValue == self.names.count { self.allLooked.raise() }
                while !self.stop.wait(for: self.interval) { self.check(level) }
            }
        }
        allLooked.wait(for: patience)
    }

    /// Stops the threads after their check under way (a thread blocked in one ends with the process).
    func end() {
        stop.raise()
    }

    private func check(_ level: String) {
        // (The first check counts from the start, when `since` was set.)
        states.withLock { states in
            if states[level]?.since == nil { states[level]?.since = .now }
        }
        let found = look(level)
        states.withLock { $0[level] = State(look: found, since: nil) }
    }

    /// The levels out of service at `now`, with why: as their last check found them, or not
    /// answering while a check has waited longer than `patience`.
    func unavailable(at now: ContinuousClock.Instant = .now) -> [String: String] {
        states.withLock { states in
            var found: [String: String] = [:]
            for (level, state) in states {
                if let since = state.since, now - since > patience {
                    found[level] = "its directory \(directories[level] ?? "") has not answered a check within \(patience) (a stalled disk, or a network filesystem whose server is gone)"
                } else if let reason = state.look.unavailable {
                    found[level] = reason
                }
            }
            return found
        }
    }

    /// Each disk's usage as its last check read it.
    var disks: DiskReport {
        DiskReport(levels: states.withLock { $0.compactMapValues(\.look.usage) })
    }
}
