import FileMover
import JobQueue
import RelocatorCore
import SQLStore

/// Why a content is where it is: `GET /v1/contents/{cid}/why` and `relocator why <cid>` (the same
/// JSON). The level table and the range the last count falls in, the level SQL records, where the
/// file actually is on the disks this process sees, the active job and the relocation history.
public struct WhyReport: Encodable, Sendable {
    public var content: Content
    public var levels: [LevelRange]
    /// The last count submitted for the content (from its job), when one is known.
    public var lastCount: Int64?
    /// The level whose range holds `lastCount` (the top level when it is above every range).
    public var countLevel: String?
    /// True when `lastCount` is above every `max_counts`: submitting it raised the top level's.
    public var countAboveEveryRange: Bool
    /// Each level directory of `RELOCATOR_LEVELS` this process sees, and what the filename is there.
    public var disks: [Disk]
    public var job: JobView?
    public var history: [Relocation]

    public struct Disk: Encodable, Sendable, Equatable {
        public var level: String
        public var directory: String
        /// `file`, `missing`, `not_regular_file`, `unsafe_path` or `unreadable`.
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

    /// `residentCount` is the content's count as its level's residents set holds it (the last
    /// count or hit accepted, decayed with a half-life): the last count unless a job in flight
    /// holds a newer one.
    public init(content: Content, levels: [LevelRange], job: JobView?, disks: [Disk], history: [Relocation], residentCount: Int64? = nil) {
        self.content = content
        self.levels = LevelTable(levels).ranges
        self.job = job
        self.disks = disks
        self.history = history
        if let active = job?.job, active.status != .committed, active.status != .dead {
            lastCount = active.count
        } else {
            lastCount = residentCount ?? job?.job.count
        }
        let choice = lastCount.flatMap { LevelTable(levels).choose(count: $0) }
        countLevel = choice?.level
        countAboveEveryRange = choice?.raiseMaxCounts != nil
    }

    /// The levels whose directory holds the file.
    public var foundOn: [String] { disks.filter { $0.state == "file" }.map(\.level) }

    /// One paragraph in words: what the database says, where the file is, what the last count
    /// asks for and what the job is doing about it.
    public var summary: String {
        var lines = ["cid \(content.cid) (\(content.filename)) is on \(content.level) according to the database."]
        if !disks.isEmpty {
            let found = foundOn
            switch found.count {
            case 0: lines.append("The file is on none of the level directories this process sees.")
            case 1 where found[0] == content.level: lines.append("The file is there on disk.")
            default: lines.append("The file is on disk at: \(found.joined(separator: ", ")).")
            }
        }
        if let lastCount, let countLevel {
            let range = levels.first { $0.name == countLevel }
            let rangeText = range.map { " (\($0.minCounts)–\($0.maxCounts))" } ?? ""
            lines.append("The last count, \(lastCount), falls in \(countLevel)\(rangeText)\(countAboveEveryRange ? ", above every range: it raised that level's max_counts" : "").")
        } else if let lastCount {
            lines.append("The last count, \(lastCount), falls in no level.")
        }
        if let view = job {
            let job = view.job
            var text = "Its job \(job.id) (\(job.dbLevel) → \(job.target)) is \(job.status.rawValue)"
            if job.attempts > 0 { text += " after \(job.attempts) failed attempt\(job.attempts == 1 ? "" : "s")" }
            if let worker = job.workerID, job.status == .moving { text += " on worker \(worker)" }
            if let error = job.lastError, job.status == .retrying || job.status == .dead { text += "; last error: \(error)" }
            if let next = view.nextRetryAt { text += "; next try at \(next)" }
            lines.append(text + ".")
        } else {
            lines.append("It has no job.")
        }
        if let last = history.last { lines.append("Last moved \(last.from) → \(last.to) at \(last.movedAt) (\(history.count) move\(history.count == 1 ? "" : "s") recorded).") }
        return lines.joined(separator: " ")
    }

    enum CodingKeys: String, CodingKey {
        case cid, filename, levels, disks, job, history, summary
        case contentLevel = "content_level", updateTime = "update_time", lastCount = "last_count", countLevel = "count_level"
        case countAboveEveryRange = "count_above_every_range", foundOn = "found_on"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(content.cid, forKey: .cid)
        try c.encode(content.filename, forKey: .filename)
        try c.encode(content.level, forKey: .contentLevel)
        try c.encode(content.updateTime, forKey: .updateTime)
        try c.encode(levels, forKey: .levels)
        try c.encode(lastCount, forKey: .lastCount)
        try c.encode(countLevel, forKey: .countLevel)
        try c.encode(countAboveEveryRange, forKey: .countAboveEveryRange)
        try c.encode(disks, forKey: .disks)
        try c.encode(foundOn, forKey: .foundOn)
        try c.encode(job, forKey: .job)
        try c.encode(history, forKey: .history)
        try c.encode(summary, forKey: .summary)
    }
}

extension RelocationService {
    /// The why-report of one content (`/v1/contents/{cid}/why`, `relocator why`).
    public func why(cid: Int64) async throws -> WhyReport {
        let content = try await self.content(cid: cid)
        let (ranges, history) = try await sql.withDatabase { db in
            (try LevelStore(database: db).levels(), try ContentStore(database: db).history(cid: cid))
        }
        var disks: [WhyReport.Disk] = []
        if let directories {
            for level in directories.names {
                disks.append(await disk(level: level, directory: directories.directory(of: level) ?? "", filename: content.content.filename))
            }
        }
        let queue = self.queue, level = content.content.level
        let score = try await redis.withConnection { try queue.residentScore(cid: cid, level: level, on: $0) }
        let residentCount = score.map { score in
            CountBound.clamped(halfLife.map { DecayingCounter(halfLife: $0).value(ofScore: score, now: clock()) } ?? score)
        }
        return WhyReport(content: content.content, levels: ranges, job: content.job, disks: disks, history: history, residentCount: residentCount)
    }

    /// What `filename` is in one level directory, looked up as the mover does.
    func disk(level: String, directory: String, filename: String) async -> WhyReport.Disk {
        let name: Filename
        do {
            name = try Filename(filename)
        } catch {
            return .init(level: level, directory: directory, state: "unsafe_path", detail: "\(error)")
        }
        guard let root = root(of: level) else {
            return .init(level: level, directory: directory, state: "unreadable", detail: "the level directory cannot be opened here")
        }
        do {
            switch try await BlockingExecutor.shared.run({ try root.lookup(name) }) {
            case .regularFile(let size): return .init(level: level, directory: directory, state: "file", size: size)
            case .missing: return .init(level: level, directory: directory, state: "missing")
            case .notRegularFile(let kind): return .init(level: level, directory: directory, state: "not_regular_file", detail: kind)
            }
        } catch let error as MoveError where error.kind == .unsafePath {
            return .init(level: level, directory: directory, state: "unsafe_path", detail: error.message)
        } catch {
            return .init(level: level, directory: directory, state: "unreadable", detail: "\(error)")
        }
    }
}
