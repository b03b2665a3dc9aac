import RelocatorApp
import RelocatorCore

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

    public typealias Disk = FileSighting

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

    /// The report of `why`'s facts.
    public init(_ facts: WhyFacts) {
        self.init(content: facts.content, levels: facts.levels, job: facts.job.map { JobView($0, nextRetryAt: Timestamp(milliseconds: facts.nextRetryAt), showsPull: true) },
                  disks: facts.disks, history: facts.history, residentCount: facts.residentCount)
    }

    /// The levels whose directory holds the file.
    public var foundOn: [String] { disks.filter { $0.state == "file" }.map(\.level) }

    /// One paragraph in words: what the database says, where the file is, what the last count
    /// asks for and what the job is doing about it.
    public var summary: String {
        var lines = ["cid \(content.cid) (\(content.filename)) is on \(content.level) according to the database."]
        if !disks.isEmpty {
            let found = foundOn
            let silent = disks.filter { $0.state == "not_answering" }.map(\.level)
            switch found.count {
            case 0 where !silent.isEmpty: lines.append("The file is on none of the level directories this process sees that answered.")
            case 0: lines.append("The file is on none of the level directories this process sees.")
            case 1 where found[0] == content.level: lines.append("The file is there on disk.")
            default: lines.append("The file is on disk at: \(found.joined(separator: ", ")).")
            }
            if !silent.isEmpty {
                lines.append("The directory of \(silent.joined(separator: ", ")) did not answer: the file may be there, unseen.")
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
            if let route = job.pulledFrom {
                let progress = job.bytesTotal.map { " (\(Human.bytes(job.bytesDone ?? 0)) of \(Human.bytes($0)) verified)" } ?? ""
                lines.append("It is pulled from another host: \(route.sentence)\(progress).")
            }
            if let by = job.queuedBy {
                lines.append("It was queued by \(by.who)" + (by.rule.isEmpty ? "." : "; its target: \(by.rule)."))
            } else {
                lines.append("Who queued it is not recorded (a job queued before this version).")
            }
            if let next = job.nextTarget {
                let asked = job.nextQueuedBy.map { " (asked by \($0.who)" + ($0.rule.isEmpty ? ")" : ": \($0.rule))") } ?? ""
                lines.append("Once this move is committed it goes on to \(next)\(asked).")
            }
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
