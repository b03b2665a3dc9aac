import FileMover
import Foundation
import RelocatorCore
import SQLStore

/// What placement would do now, for the current counts and policies: the moves already queued, the
/// demotions of levels above their high watermark (coldest contents first, down to the low
/// watermark; a hotter content waiting for room displaces a colder resident), the contents whose
/// decayed hit count fell out of their level, and each level's projected fill. `relocator plan`
/// prints it and changes nothing; the rebalancer carries out the moves it proposes.
public struct Planner {
    public let queue: any QueueReading
    public let database: any SQLDatabase
    public let halfLife: Duration?
    /// How many of a level's coldest residents one round looks at.
    public var candidates = 200
    /// Per level, the heartbeat time (ms, Redis' clock) a disk report must be newer than to count:
    /// the rebalancer's last moves out of the level had landed then.
    public var reportsAfter: [String: Int64] = [:]
    /// Per level, the bytes of the rebalancer's moves out of it still under way: counted as freed
    /// (the disk report does not show them yet), so they are never shed a second time.
    public var leaving: [String: Int64] = [:]

    public init(queue: any QueueReading, database: any SQLDatabase, halfLife: Duration?) {
        self.queue = queue
        self.database = database
        self.halfLife = halfLife
    }

    public struct Move: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable, CaseIterable {
            /// A job already exists (queued, retrying, deferred or moving).
            case pending
            /// The level is above its high watermark: its coldest contents go down.
            case watermark
            /// A hotter content waits for room on a full level: a colder resident makes it.
            case displacement
            /// The content's decayed hit count fell below its level's range.
            case decay
            /// A content displaced earlier (or kept out) is hotter than a resident of the level its
            /// count names: it goes back up (waiting for room if need be, then displacing the colder).
            case promotion
            /// A deferred job whose content cannot fit below its target's high watermark even on an
            /// empty disk: it displaces nobody and goes to the dead letters (`does_not_fit`).
            case doesNotFit = "does_not_fit"
        }

        public var cid: Int64
        public var filename: String?
        public var from: String
        public var to: String
        public var kind: Kind
        /// Why, in a sentence.
        public var reason: String
        /// The count placement used (a decayed value with a half-life).
        public var count: Double?
        /// For a pending job: its status (`queued`, `deferred`…).
        public var status: String?
        /// The bytes the plan counts for it (its last recorded move, else an estimate).
        public var bytes: Int64? = nil
    }

    public struct LevelFill: Encodable, Sendable, Equatable {
        public var level: String
        public var used: Int64?
        /// Bytes an unprivileged writer may still use (`df`'s Avail).
        public var available: Int64?
        /// The filesystem's size (`df`'s Size), for information: fills are of used + available.
        public var size: Int64?
        /// Bytes the planned moves bring in and take out (known sizes only).
        public var incoming: Int64
        public var outgoing: Int64
        public var highWater: Int?
        public var lowWater: Int?
        /// The level below, when it shares this level's filesystem: the level is not shed (a move
        /// down would free nothing on its disk).
        public var sharesFilesystemWith: String? = nil

        /// The fill now, as `df` shows it: used / (used + available), in percent.
        public var percent: Double? {
            guard let used, let available else { return nil }
            let usage = Placement.Usage(used: used, available: available)
            // An empty disk (nothing used, nothing available) has no fill.
            return usage.capacity > 0 ? usage.percent : nil
        }

        /// The fill after the planned moves, in percent of the same capacity (a move in takes
        /// from what is available, a move out gives back to it).
        public var projectedPercent: Double? {
            guard let used, let available else { return nil }
            let usage = Placement.Usage(used: used, available: available)
            guard usage.capacity > 0 else { return nil }
            // Moves out beyond what the report counts as used leave it empty, not below zero.
            return Placement.Usage.percent(used: max(0, Double(usage.used) + Double(incoming) - Double(outgoing)), capacity: usage.capacity)
        }


        enum CodingKeys: String, CodingKey {
            case level, used, available, size, incoming, outgoing, percent
            case projectedPercent = "projected_percent"
            case highWater = "high_water"
            case lowWater = "low_water"
            case sharesFilesystemWith = "shares_filesystem_with"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(level, forKey: .level)
            try c.encode(used, forKey: .used)
            try c.encode(available, forKey: .available)
            try c.encode(size, forKey: .size)
            try c.encode(incoming, forKey: .incoming)
            try c.encode(outgoing, forKey: .outgoing)
            try c.encode(percent, forKey: .percent)
            try c.encode(projectedPercent, forKey: .projectedPercent)
            try c.encode(highWater, forKey: .highWater)
            try c.encode(lowWater, forKey: .lowWater)
            try c.encodeIfPresent(sharesFilesystemWith, forKey: .sharesFilesystemWith)
        }
    }

    public struct Plan: Encodable, Sendable, Equatable {
        public var moves: [Move]
        public var levels: [LevelFill]
    }

    /// The plan. `full` also lists the jobs already in flight (a scan of every job: for the
    /// command, not for the rebalancer's rounds). `now` (ms since 1970) decays the counts: by
    /// default the queue's clock, which stamped them (`Heartbeat.queueClock`).
    public func plan(full: Bool, now given: Int64? = nil) throws -> Plan {
        let levelStore = LevelStore(database: database)
        let snapshot = PlacementSnapshot(levels: try levelStore.levels(), policies: try levelStore.policies(), halfLife: halfLife)
        let placement = snapshot.placement
        let store = ContentStore(database: database)
        let beats = try queue.heartbeats()
        let reports = diskReports(beats)
        let disks = diskUsage(reports)
        let now = given ?? Heartbeat.queueClock(beats) ?? WallClock.milliseconds()
        var moves: [Move] = []
        var busy = Set<Int64>()

        if full {
            // A thousand jobs at a time, their status first: the committed ones (readable for a day)
            // and the dead ones are not read whole.
            var jobs: [Int64: Job] = [:]
            for chunk in try queue.jobCIDs().sorted().chunks(of: 1000) {
                let states = try queue.states(cids: Array(chunk))
                let open = chunk.filter { cid in states[cid].map { $0.status != .committed && $0.status != .dead } ?? false }
                if !open.isEmpty { jobs.merge(try queue.jobs(cids: open)) { _, new in new } }
            }
            for cid in jobs.keys.sorted() {
                guard let job = jobs[cid], job.status != .committed, job.status != .dead else { continue }
                busy.insert(cid)
                let why: String
                switch job.status {
                case .deferred: why = "waiting: \(job.deferReason ?? "deferred")"
                case .retrying: why = "retrying after: \(job.lastError ?? "a failure")"
                case .moving: why = "moving now (worker \(job.workerID ?? "?"))"
                case .done: why = "moved, waiting for the committer"
                default: why = "queued for its count \(job.count)"
                }
                moves.append(Move(cid: cid, filename: job.filename, from: job.dbLevel, to: job.target, kind: .pending, reason: why,
                                  count: Double(min(max(job.count, 0), CountBound.max)), status: job.status.rawValue))
            }
        }

        let counter = halfLife.map(DecayingCounter.init)
        /// A score as a count: decayed with a half-life, and within the range of a count whatever
        /// Redis holds (a score of 1e300, a clock that stepped).
        func value(_ score: Double) -> Double {
            let raw = counter.map { $0.value(ofScore: score, now: now) } ?? score
            return raw.isNaN ? 0 : min(max(raw, 0), Double(CountBound.max))
        }
        /// A content with a job of its own, or whose last job is dead, is left to that job and to
        /// the operator (a dead move planned again every round went dead again every round: a file
        /// gone from its disk filled the dead letters, and a purge brought it back at once).
        func isBusy(_ cid: Int64) throws -> Bool {
            if busy.contains(cid) { return true }
            guard let state = try queue.states(cids: [cid])[cid] else { return false }
            return state.status != .committed
        }
        var planned = Set(moves.map(\.cid))
        // The size counted for each content a move was planned for (its last recorded move, else an
        // estimate), so the projected fill counts the same without reading it again.
        var sizes: [Int64: Int64] = [:]

        // Decayed counts that fell out of their level.
        if let counter {
            for range in snapshot.levels {
                let floor = Double(range.minCounts) * (1 - Double(snapshot.policies[range.name]?.hysteresis ?? 0) / 100)
                guard floor > 0 else { continue }
                for resident in try queue.residents(level: range.name, .below(counter.score(below: floor, now: now), limit: candidates))
                where !planned.contains(resident.cid) {
                    let (cid, score) = (resident.cid, resident.score)
                    let current = value(score)
                    guard let decision = placement.target(count: CountBound.clamped(current), current: range.name),
                          decision.level != range.name, !(try isBusy(cid)) else { continue }
                    planned.insert(cid)
                    moves.append(Move(cid: cid, filename: nil, from: range.name, to: decision.level, kind: .decay,
                                      reason: "its hit count decayed to \(current.formatted(decimals: 1)), below \(range.name)'s \(Int64(clamping: floor.rounded(.up)))",
                                      count: current, status: nil))
                }
            }
        }

        // Deferred jobs that wait for room: those that can never fit go to the dead letters; the
        // others may displace colder residents.
        let waiting = try deferredForRoom()
        for job in waiting {
            guard let message = job.doesNotFit else { continue }
            if let index = moves.firstIndex(where: { $0.cid == job.cid }) { moves.remove(at: index) }
            planned.insert(job.cid)
            moves.append(Move(cid: job.cid, filename: nil, from: job.from, to: job.target, kind: .doesNotFit,
                              reason: message, count: Double(job.count), status: JobStatus.deferred.rawValue))
        }

        // Levels not shed because the level below shares their filesystem, with that level.
        var sharing: [String: String] = [:]
        // Levels above their high watermark shed their coldest contents, down to the low watermark
        // and never more than one content below it; a hotter content waiting for room on a level
        // displaces colder residents, each waiting content the coldest one not yet chosen, within
        // the same bound.
        for level in placement.rankedLevels {
            guard let policy = snapshot.policies[level], policy.highWater != nil, let below = placement.levelBelow(level) else { continue }
            let cold = try coldestResidents(level, store: store, value: value)
            // Contents below whose count names this level and which are hotter than its coldest
            // resident, without a job: they come back (a strictly hotter one each time, so this ends).
            if let coldest = cold.first(where: { !planned.contains($0.cid) }) {
                var proposed = 0
                for lower in placement.rankedLevels.drop(while: { $0 != level }).dropFirst() {
                    for hot in try queue.residents(level: lower, .hottest(limit: 20)) where !planned.contains(hot.cid) && proposed < 10 {
                        let (cid, score) = (hot.cid, hot.score)
                        let current = value(score)
                        guard current > coldest.count,
                              placement.target(count: CountBound.clamped(current), current: lower)?.level == level else { continue }
                        if try isBusy(cid) { continue }
                        guard let content = try store.content(cid: cid), content.level == lower else { continue }
                        planned.insert(cid)
                        proposed += 1
                        moves.append(Move(cid: cid, filename: content.filename, from: lower, to: level, kind: .promotion,
                                          reason: "its count \(current.countText) names \(level), and it is hotter than \(level)'s coldest resident (\(coldest.count.countText))",
                                          count: current, status: nil))
                    }
                }
            }
            // Without a fresh report of the disk nothing is shed or displaced.
            guard let usage = disks[level].map(Placement.Usage.init), let marks = placement.watermarkBytes(of: level, usage: usage) else { continue }
            // Nor when the level below is on the same filesystem: a move down would free nothing
            // on it, and the next round would find the disk as full and shed again, until every
            // content had gone down.
            if Self.shareFilesystem(level, below, in: reports, after: reportsAfter) {
                sharing[level] = below
                continue
            }
            // What the disk will hold once the moves out already under way have landed.
            let used = max(0, usage.used.saturatingSubtract(leaving[level] ?? 0))
            let average = usage.used / Int64(max(1, cold.count))
            func size(_ cid: Int64) throws -> Int64 {
                if let known = sizes[cid] { return known }
                let bytes = max(0, try store.history(cid: cid).last?.bytes ?? average)
                sizes[cid] = bytes
                return bytes
            }
            // At most this much leaves in one round: down to the low watermark, plus the one content
            // that crosses it.
            let budget = max(0, used.saturatingSubtract(marks.low))
            var freed: Int64 = 0
            var residents = cold.filter { !planned.contains($0.cid) }.makeIterator()
            /// The coldest resident not yet chosen that may go (no job of its own), or nil.
            func nextResident() throws -> Resident? {
                while let resident = residents.next() {
                    if planned.contains(resident.cid) { continue }
                    if try isBusy(resident.cid) { continue }
                    // An entry left in the set by a count that met a stale cache of another level
                    // is not a resident: the database says where the content is.
                    if try store.content(cid: resident.cid)?.level != level { continue }
                    return resident
                }
                return nil
            }
            func demote(_ resident: Resident, kind: Move.Kind, why: String) throws {
                planned.insert(resident.cid)
                freed = freed.saturatingAdd(try size(resident.cid))
                moves.append(Move(cid: resident.cid, filename: resident.filename, from: level, to: below, kind: kind,
                                  reason: "\(why); count \(resident.count.countText) is among its coldest",
                                  count: resident.count, status: nil))
            }
            if used > marks.high {
                let percent = Placement.Usage.percent(used: Double(used), capacity: usage.capacity)
                let why = "\(level) is at \(percent.formatted(decimals: 1)) %, above its high watermark \(policy.highWater!) %"
                while freed < budget, let resident = try nextResident() { try demote(resident, kind: .watermark, why: why) }
                continue
            }
            // Room for the waiting contents, hottest first: each that does not fit in the room left
            // displaces colder residents, one hotter content never displacing a hotter resident.
            var room = marks.high.saturatingSubtract(used)
            for hot in waiting.filter({ $0.target == level && $0.doesNotFit == nil }).sorted(by: { $0.count > $1.count }) {
                let needed = try size(hot.cid)
                while room < needed, freed <= budget {
                    // The residents come coldest first: one not colder than this content is not
                    // colder than the next ones either.
                    guard let resident = try nextResident(), resident.count < Double(hot.count) else { break }
                    room = room.saturatingAdd(try size(resident.cid))
                    try demote(resident, kind: .displacement,
                               why: "a content with count \(hot.count) waits for room on \(level); colder residents make it")
                }
                guard room >= needed else { break }
                room -= needed
            }
        }

        // Each level's fill after the moves (sizes from the last recorded move of each content, else
        // the estimate the shedding used).
        var fills: [String: LevelFill] = [:]
        for range in snapshot.levels {
            let usage = disks[range.name]
            fills[range.name] = LevelFill(level: range.name, used: usage?.used, available: usage?.free, size: usage?.size, incoming: 0, outgoing: 0,
                                          highWater: snapshot.policies[range.name]?.highWater, lowWater: snapshot.policies[range.name]?.lowWater,
                                          sharesFilesystemWith: sharing[range.name])
        }
        // The filenames and last recorded sizes of every planned move, read a thousand at a time.
        func counted(_ move: Move) -> Bool { move.kind != .doesNotFit && !(move.kind == .pending && move.status == "done") }
        let unnamed = moves.filter { $0.filename == nil }.map(\.cid)
        let names = unnamed.isEmpty ? [:] : try store.contents(cids: unnamed)
        let unsized = moves.filter { counted($0) && sizes[$0.cid] == nil }.map(\.cid)
        let lastBytes = unsized.isEmpty ? [:] : try store.lastMovedBytes(cids: unsized)
        for index in moves.indices {
            if moves[index].filename == nil { moves[index].filename = names[moves[index].cid]?.filename }
            guard counted(moves[index]) else { continue }
            let bytes = sizes[moves[index].cid] ?? lastBytes[moves[index].cid] ?? 0
            moves[index].bytes = bytes
            if let outgoing = fills[moves[index].from]?.outgoing { fills[moves[index].from]?.outgoing = outgoing.saturatingAdd(bytes) }
            if let incoming = fills[moves[index].to]?.incoming { fills[moves[index].to]?.incoming = incoming.saturatingAdd(bytes) }
        }
        return Plan(moves: moves, levels: snapshot.levels.reversed().compactMap { fills[$0.name] })
    }

    /// A resident of a level with its current count.
    struct Resident {
        var cid: Int64
        var filename: String?
        var count: Double
    }

    /// A level's coldest contents: those never counted first (count 0), then the residents set's
    /// lowest scores.
    private func coldestResidents(_ level: String, store: ContentStore, value: (Double) -> Double) throws -> [Resident] {
        let scored = try queue.residents(level: level, .coldest(limit: candidates))
        let known = Set(scored.map(\.cid))
        var never: [Resident] = []
        for content in try store.contents(limit: candidates, offset: 0, level: level) where !known.contains(content.cid) {
            if try queue.residents(level: level, .cid(content.cid)).isEmpty {
                never.append(Resident(cid: content.cid, filename: content.filename, count: 0))
            }
        }
        return never + scored.map { Resident(cid: $0.cid, filename: nil, count: value($0.score)) }
    }

    /// A deferred job waiting for room on its target (a watermark).
    struct Waiting {
        var cid: Int64
        var from: String
        var target: String
        var count: Int64
        /// Set when its content can never fit there: why.
        var doesNotFit: String?
    }

    /// Deferred jobs waiting for room (a watermark), with their target and count.
    private func deferredForRoom() throws -> [Waiting] {
        try queue.scheduled(.deferred, limit: 1000).compactMap { job in
            guard job.status == .deferred, let reason = job.deferReason else { return nil }
            let doesNotFit = reason.hasPrefix(Placement.doesNotFitPrefix) ? String(reason.dropFirst(Placement.doesNotFitPrefix.count)) : nil
            guard doesNotFit != nil || reason.contains("watermark") else { return nil }
            return Waiting(cid: job.cid, from: job.dbLevel, target: job.target, count: min(max(0, job.count), CountBound.max),
                           doesNotFit: doesNotFit.map { "cid \(job.cid): \($0)" })
        }
    }

    /// Whether the report `a`'s fill comes from (`diskReports`) finds the directories of `a` and
    /// `b` on one filesystem: the worker whose disk is the fullest decides, not another that has
    /// both on one volume (a test host, a container with both bound from one).
    static func shareFilesystem(_ a: String, _ b: String, in reports: [String: Heartbeat], after: [String: Int64]) -> Bool {
        guard let beat = reports[a], let disks = beat.disks, !beat.unavailable.contains(b), beat.beatAt ?? 0 > after[b] ?? Int64.min else {
            return false
        }
        return disks.sameFilesystem(a, b)
    }

    /// Each level's disk as the live workers report it (the fullest report of a level wins, its
    /// fill as `df` computes it). A worker holding a level out of service (unmounted, replaced)
    /// reports the bare mountpoint's filesystem: not that level's disk.
    private func diskUsage(_ reports: [String: Heartbeat]) -> [String: DiskReport.Usage] {
        Dictionary(uniqueKeysWithValues: reports.compactMap { level, beat in beat.disks?.levels[level].map { (level, $0) } })
    }

    /// The heartbeat whose report gives each level's disk (`diskUsage`).
    private func diskReports(_ beats: [Heartbeat]) -> [String: Heartbeat] {
        var chosen: [String: (beat: Heartbeat, percent: Double)] = [:]
        for beat in beats {
            for (level, disk) in beat.disks?.levels ?? [:]
            where beat.beatAt ?? 0 > reportsAfter[level] ?? Int64.min && !beat.unavailable.contains(level) {
                let percent = Placement.Usage(disk).percent
                if percent > chosen[level]?.percent ?? -1 { chosen[level] = (beat, percent) }
            }
        }
        return chosen.mapValues(\.beat)
    }
}

extension Planner {
    /// The plan in brief, what `relocator plan` prints by default: per kind of move, how many and
    /// their bytes; per level, its contents, its fill now and after the moves (as `df` counts it),
    /// and the moves into and out of it by kind. Its size grows with the levels, not with the moves.
    public struct Summary: Codable, Sendable, Equatable {
        public struct Kind: Codable, Sendable, Equatable {
            public var kind: Move.Kind
            public var moves: Int
            /// The bytes the plan counts for them (known or estimated sizes; none for a move already
            /// done or one that can never fit).
            public var bytes: Int64
        }

        public struct Level: Codable, Sendable, Equatable {
            public var level: String
            /// Contents the database places on the level.
            public var contents: Int64
            public var used: Int64?
            public var available: Int64?
            public var size: Int64?
            /// Used / (used + available) in percent, as `df` prints it, now and after the planned moves.
            public var fill: Double?
            public var fillAfter: Double?
            public var incoming: Int64
            public var outgoing: Int64
            public var highWater: Int?
            public var lowWater: Int?
            /// Moves into and out of the level, by kind (kinds with none are absent).
            public var movesIn: [String: Int]
            public var movesOut: [String: Int]
            /// The level below, when it shares this level's filesystem (the level is not shed).
            public var sharesFilesystemWith: String? = nil

            enum CodingKeys: String, CodingKey {
                case level, contents, used, available, size, fill, incoming, outgoing
                case fillAfter = "fill_after"
                case highWater = "high_water"
                case lowWater = "low_water"
                case movesIn = "moves_in"
                case movesOut = "moves_out"
                case sharesFilesystemWith = "shares_filesystem_with"
            }
        }

        /// Every planned move.
        public var total: Int
        /// In the order of `Move.Kind`'s cases, those with at least one move.
        public var kinds: [Kind]
        /// In the plan's order (the top level first).
        public var levels: [Level]
    }

    /// The summary of `plan`, with each level's number of contents (`ContentStore.countsByLevel`).
    public static func summary(of plan: Plan, contents: [String: Int64]) -> Summary {
        var byKind: [Move.Kind: (moves: Int, bytes: Int64)] = [:]
        var into: [String: [String: Int]] = [:], outOf: [String: [String: Int]] = [:]
        for move in plan.moves {
            let sum = byKind[move.kind] ?? (0, 0)
            byKind[move.kind] = (sum.moves + 1, sum.bytes.saturatingAdd(move.bytes ?? 0))
            into[move.to, default: [:]][move.kind.rawValue, default: 0] += 1
            outOf[move.from, default: [:]][move.kind.rawValue, default: 0] += 1
        }
        let kinds = Move.Kind.allCases.compactMap { kind in byKind[kind].map { Summary.Kind(kind: kind, moves: $0.moves, bytes: $0.bytes) } }
        let levels = plan.levels.map { fill in
            Summary.Level(level: fill.level, contents: contents[fill.level] ?? 0, used: fill.used, available: fill.available, size: fill.size,
                          fill: fill.percent, fillAfter: fill.projectedPercent, incoming: fill.incoming, outgoing: fill.outgoing,
                          highWater: fill.highWater, lowWater: fill.lowWater,
                          movesIn: into[fill.level] ?? [:], movesOut: outOf[fill.level] ?? [:], sharesFilesystemWith: fill.sharesFilesystemWith)
        }
        return Summary(total: plan.moves.count, kinds: kinds, levels: levels)
    }
}
