@testable import FileMover
import RelocatorCore

/// The state the interleaving explorer searches: one content on two levels (one filesystem, or
/// two), the content lock, the job as the queue keeps it, the row as SQL keeps it, and every
/// delivery of the job with its own `MoveMachine` — the mover's transition code, not a model of it.
/// A value: the explorer copies it to branch and hashes it to skip states already visited.
struct ExplorerState: Hashable {
    struct Inode: Hashable {
        /// The bytes, as one number: the content's are `content`; a copy being written is 0.
        var data: Int
        /// Bumped by every write (what size and modification time tell a real file by).
        var version: Int
    }

    /// A name in a level: the content's (`f`) or a temporary file (`tmp/<gen>`).
    struct Name: Hashable {
        var level: Int
        var path: String
    }

    /// The job as the queue scripts keep it (the fields the move protocol reads or writes).
    struct Job: Hashable {
        enum Status: Hashable { case queued, moving, deferred, retrying, done, committed, dead, gone }
        var status: Status = .queued
        var gen = 1
        var token = 0
        var source = 0
        var target = 1
        var published = false
        var checksum: Int?
        var fence: Int?
        var nextTarget: Int?
        var holder: Int?
    }

    /// One delivery: a worker process that claimed the job with `token`, and where it is.
    struct Delivery: Hashable {
        enum Phase: Hashable {
            case moving(MoveMachine<ExplorerWorld>)
            /// Moved: the ack is next.
            case acking(MoveResult)
            case ended
            /// Killed: it does nothing more, and its lock is released.
            case crashed
        }
        var token: Int
        var gen: Int
        var source: Int
        var target: Int
        var expected: Int?
        var phase: Phase
        /// Fault budget: only these deliveries may be reaped or crashed.
        var faulty: Bool

        var alive: Bool {
            switch phase {
            case .moving, .acking: return true
            case .ended, .crashed: return false
            }
        }
    }

    static let content = 42
    static let filename = "f"

    var inodes: [Int: Inode] = [1: Inode(data: content, version: 1)]
    var names: [Name: Int] = [Name(level: 0, path: filename): 1]
    var nextInode = 2
    /// The delivery holding the content's lock in each level.
    var locks: [Int: Int] = [:]
    var job = Job()
    /// The level `contents` records, and the generation that wrote it.
    var sqlLevel = 0
    var sqlGen = 0
    var deliveries: [Delivery] = []
    /// The devices of the levels: one filesystem or two.
    var devices: [Int]
    // What is left of the budget of faults and events.
    var reaps: Int
    var crashes: Int
    var counts: Int
    var preemptions: Int
    var lastActor: Int?

    /// Levels holding a complete copy of the content under its name.
    var copies: [Int] {
        names.filter { $0.key.path == Self.filename && inodes[$0.value]?.data == Self.content }.map(\.key.level).sorted()
    }
}

/// `MoveWorld` over `ExplorerState`, as delivery `me` sees it: the same checks as `LevelWorld`
/// on in-memory names and inodes, and the job calls of the worker's hooks (the token check).
final class ExplorerWorld: MoveWorld {
    struct Entry: Hashable {
        var level: Int
        var path: String
    }

    struct Identity: Hashable {
        var inode: Int
        var version: Int
    }

    struct File: Hashable {
        var entry: Entry
        var identity: Identity
    }

    var state: ExplorerState
    let me: Int

    init(_ state: ExplorerState, delivery: Int) {
        self.state = state
        self.me = delivery
    }

    private var delivery: ExplorerState.Delivery { state.deliveries[me] }

    func levelIndex(_ side: MoveSide) -> Int {
        switch side {
        case .source: return delivery.source
        case .target: return delivery.target
        case .other: return -1
        }
    }

    var otherCount: Int { 0 }
    func level(_ side: MoveSide) -> String { "L\(levelIndex(side))" }
    var algorithm: ChecksumAlgorithm { .xxh128 }
    var expectedChecksum: Checksum? { delivery.expected.map(Self.checksum) }
    func display(_ entry: Entry) -> String { "L\(entry.level)/\(entry.path)" }
    func missingError() -> MoveError { MoveError(.sourceMissing, "the file is on no level") }

    static func checksum(_ data: Int) -> Checksum {
        do {
            return try Checksum(algorithm: .xxh128, hex: String(String(data, radix: 16).reversed()).padding(toLength: 32, withPad: "0", startingAt: 0))
        } catch {
            preconditionFailure("\(error)")
        }
    }

    // MARK: - Lock

    func lockContent() throws -> Bool {
        let levels = [delivery.source, delivery.target]
        guard levels.allSatisfy({ state.locks[$0] == nil || state.locks[$0] == me }) else { return false }
        for level in levels { state.locks[level] = me }
        return true
    }

    func lockAlso(_ side: MoveSide) throws -> Bool { true }

    func unlockContent() {
        state.locks = state.locks.filter { $0.value != me }
    }

    func requireLevelsInPlace() throws {}

    // MARK: - Names and files

    func entry(_ side: MoveSide, create: Bool) throws -> Entry? { Entry(level: levelIndex(side), path: ExplorerState.filename) }

    func holdsRegularFile(_ entry: Entry) throws -> Bool { state.names[name(entry)] != nil }

    func open(_ entry: Entry) throws -> File? {
        guard let inode = state.names[name(entry)] else { return nil }
        return File(entry: entry, identity: identity(inode))
    }

    func entry(of file: File) -> Entry { file.entry }
    func identity(of file: File) -> Identity { file.identity }
    func currentIdentity(of file: File) throws -> Identity { identity(file.identity.inode) }
    func size(_ identity: Identity) -> Int64 { 1 }
    func sameContent(_ a: Identity, _ b: Identity) -> Bool { a == b }
    func isSameFile(_ a: Identity, _ b: Identity) -> Bool { a.inode == b.inode }

    func names(_ entry: Entry, _ identity: Identity) throws -> Bool {
        guard let inode = state.names[name(entry)] else { return false }
        return self.identity(inode) == identity
    }

    func refuseSameDirectory(_ a: Entry, _ b: Entry) throws {}

    func sameFilesystem(_ file: File, _ entry: Entry) throws -> Bool {
        state.devices[file.entry.level] == state.devices[entry.level]
    }

    func hashSource(_ file: File) throws -> (Checksum, Int64) { try hash(file, .xxh128) }

    func hash(_ file: File, _ algorithm: ChecksumAlgorithm) throws -> (Checksum, Int64) {
        (Self.checksum(state.inodes[file.identity.inode]!.data), 1)
    }

    func requireUnchanged(_ file: File, since reference: Identity) throws {
        guard identity(file.identity.inode) == reference, try names(file.entry, reference) else {
            throw MoveError(.sourceChanged, "\(display(file.entry)) changed")
        }
    }

    func requireInPlace(_ entry: Entry) throws {}

    // MARK: - The job

    /// `progress.lua`: only while the job is this delivery's (generation, status, token); clears
    /// the fence.
    func record(_ checksum: Checksum, _ bytes: Int64) throws -> Bool {
        guard state.job.status == .moving, state.job.gen == delivery.gen, state.job.token == delivery.token else { return false }
        state.job.fence = nil
        state.job.published = true
        state.job.checksum = ExplorerState.content
        return true
    }

    // MARK: - Changing names

    func link(_ file: File, as entry: Entry) throws -> LinkOutcome {
        guard state.names[name(entry)] == nil else { return .exists }
        guard state.devices[file.entry.level] == state.devices[entry.level] else { return .crossDevice }
        state.names[name(entry)] = file.identity.inode
        return .linked
    }

    func rename(_ file: File, to entry: Entry) throws -> RenameOutcome {
        preconditionFailure("hard links are never refused in memory")
    }

    func removeSource(_ file: File, since reference: Identity, keeping: Entry, discarding: Identity?) throws {
        try requireUnchanged(file, since: reference)
        // Never the published file itself: one inode under its only name.
        if state.names.values.filter({ $0 == file.identity.inode }).count < 2, state.names[name(keeping)] == file.identity.inode {
            throw MoveError(.unsafePath, "\(display(file.entry)) is \(display(keeping)) itself")
        }
        state.names[name(file.entry)] = nil
    }

    func discard(_ entry: Entry, _ identity: Identity, keeping source: Entry) -> String {
        guard state.names[name(entry)] == identity.inode, state.names[name(source)] != nil else { return "kept" }
        state.names[name(entry)] = nil
        return "discarded"
    }

    func syncDirectory(of entry: Entry) throws {}
    func syncSourceDirectory(of entry: Entry) throws {}

    // MARK: - The copy

    private var temporary: Entry { Entry(level: delivery.target, path: "tmp/\(delivery.gen)") }

    func removeStaleTemporaries() throws {
        state.names[name(temporary)] = nil
    }

    func createTemporary() throws -> File {
        guard state.names[name(temporary)] == nil else { throw MoveError(.ioError, "\(display(temporary)) exists") }
        let inode = state.nextInode
        state.nextInode += 1
        state.inodes[inode] = ExplorerState.Inode(data: 0, version: 1)
        state.names[name(temporary)] = inode
        return File(entry: temporary, identity: identity(inode))
    }

    func copy(_ source: File, into temporary: File) throws -> Checksum {
        let data = state.inodes[source.identity.inode]!.data
        state.inodes[temporary.identity.inode]!.data = data
        state.inodes[temporary.identity.inode]!.version += 1
        return Self.checksum(data)
    }

    func syncFile(_ file: File) throws {}

    func readBack(_ file: File) throws -> (Checksum, Int64) { try hash(file, .xxh128) }

    func keepAttributes(of source: File, on copy: File) throws {}

    func renameTemporary(_ file: File, to entry: Entry) throws -> RenameOutcome {
        preconditionFailure("hard links are never refused in memory")
    }

    func removeTemporary(_ file: File) {
        if state.names[name(file.entry)] == file.identity.inode { state.names[name(file.entry)] = nil }
    }

    func fault(_ step: MoveStep) throws {}
    func lap(_ phase: MovePhase) {}

    // MARK: -

    private func name(_ entry: Entry) -> ExplorerState.Name { ExplorerState.Name(level: entry.level, path: entry.path) }

    private func identity(_ inode: Int) -> Identity { Identity(inode: inode, version: state.inodes[inode]!.version) }
}
