import FileMover
import RelocatorCore

/// What `why` shows of a content: its row, the level table, its job, where its file is on the
/// disks this process sees, its relocations and its count as its level's residents hold it.
public struct WhyFacts: Sendable {
    public var content: Content
    public var levels: [LevelRange]
    public var job: Job?
    /// When a retrying job is due again.
    public var nextRetryAt: Int64?
    public var disks: [FileSighting]
    public var history: [Relocation]
    /// The content's count as its level's residents set holds it (decayed with the half-life).
    public var residentCount: Int64?
}

/// What a filename is in one level directory, looked up as the mover does.
public struct FileSighting: Encodable, Sendable, Equatable {
    public var level: String
    public var directory: String
    /// `file`, `missing`, `not_regular_file`, `unsafe_path`, `unreadable` or `not_answering` (the
    /// directory did not answer within the patience of `App.disks`).
    public var state: String
    public var size: Int64?
    /// What the state means in words, for the states other than `file` and `missing`.
    public var detail: String?

    public init(level: String, directory: String, state: String, size: Int64? = nil, detail: String? = nil) {
        self.level = level
        self.directory = directory
        self.state = state
        self.size = size
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey { case level, directory, state, size, detail }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(level, forKey: .level)
        try c.encode(directory, forKey: .directory)
        try c.encode(state, forKey: .state)
        try c.encode(size, forKey: .size)
        try c.encode(detail, forKey: .detail)
    }
}

extension App {
    /// The facts of one content's why-report (`/v1/contents/{cid}/why`, `relocator why`).
    public func why(cid: Int64) async throws -> WhyFacts {
        let (content, ranges, history) = try await store.withStore { store -> (Content?, [LevelRange], [Relocation]) in
            (try store.content(cid: cid), try store.levels(), try store.history(cid: cid))
        }
        guard let content else { throw AppError.unknownContent(cid) }
        let job = try await self.job(cid: cid)
        var disks: [FileSighting] = []
        if let directories {
            for level in directories.names {
                disks.append(await sighting(level: level, directory: directories.directory(of: level) ?? "", filename: content.filename))
            }
        }
        let level = content.level
        let (score, beats) = try await queue.withSession { try ($0.residents(level: level, .cid(cid)).first?.score, $0.heartbeats()) }
        // Decayed on the queue's clock, which stamped the count, as the planner does.
        let now = Heartbeat.queueClock(beats) ?? clock(), halfLife = self.halfLife
        let residentCount = score.map { score in
            CountBound.clamped(halfLife.map { DecayingCounter(halfLife: $0).value(ofScore: score, now: now) } ?? score)
        }
        return WhyFacts(content: content, levels: ranges, job: job?.job, nextRetryAt: job?.nextRetryAt, disks: disks, history: history,
                        residentCount: residentCount)
    }

    /// What `filename` is in one level directory, looked up as the mover does.
    func sighting(level: String, directory: String, filename: String) async -> FileSighting {
        let name: Filename
        do {
            name = try Filename(filename)
        } catch {
            return .init(level: level, directory: directory, state: "unsafe_path", detail: "\(error)")
        }
        switch await lookAtLevel(level, { try $0.lookup(name) }) {
        case nil, .cannotOpen:
            return .init(level: level, directory: directory, state: "unreadable", detail: "the level directory cannot be opened here")
        case .notAnswering:
            return .init(level: level, directory: directory, state: "not_answering",
                         detail: "the level directory did not answer within \(disks.patience) (a stalled disk, or a network filesystem whose server is gone)")
        case .answered(.success(.regularFile(let size))):
            return .init(level: level, directory: directory, state: "file", size: size)
        case .answered(.success(.missing)):
            return .init(level: level, directory: directory, state: "missing")
        case .answered(.success(.notRegularFile(let kind))):
            return .init(level: level, directory: directory, state: "not_regular_file", detail: kind)
        case .answered(.failure(let error as MoveError)) where error.kind == .unsafePath:
            return .init(level: level, directory: directory, state: "unsafe_path", detail: error.message)
        case .answered(.failure(let error)):
            return .init(level: level, directory: directory, state: "unreadable", detail: "\(error)")
        }
    }
}
