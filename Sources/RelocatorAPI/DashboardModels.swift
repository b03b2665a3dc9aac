import RelocatorApp
import Foundation
import JobQueue
import RelocatorCore
import RelocatorMetrics
import RelocatorServices
import SQLStore

// The dashboard pages' models: plain values built by pure functions from what Redis and SQL
// said, so that every page renders in tests without a server.

/// A line above a page that says what needs an operator: jobs no worker takes, a paused level,
/// moves no committer records, Redis or the database unreachable (the page then shows the last
/// data read).
public struct Banner: Sendable, Equatable {
    /// `stuck`, `paused`, `unavailable`, `uncommitted` or `outage`.
    public var kind: String
    public var text: String

    public init(kind: String, text: String) {
        self.kind = kind
        self.text = text
    }

    /// What the queue's state says needs an operator.
    public static func from(_ stats: QueueStats) -> [Banner] {
        var banners: [Banner] = []
        let workers = stats.workers.filter { $0.alive && ($0.info[.kind] ?? "worker") == "worker" }
        func list(_ worker: QueueStats.Worker, _ field: WorkerField) -> [String] {
            (worker.info[field] ?? "").split(separator: ",").map(String.init)
        }
        for level in stats.levels {
            let jobs = "\(level.depth) job\(level.depth == 1 ? "" : "s")"
            if level.paused {
                banners.append(Banner(kind: "paused", text: "\(level.name) is paused: \(jobs) wait\(level.depth == 1 ? "s" : "") and no move into it starts. "
                                      + "Resume it on the overview, or with relocator resume \(level.name)."))
                continue
            }
            guard level.depth > 0 else { continue }
            let serving = workers.filter { list($0, .levels).contains(level.name) }
            if serving.isEmpty {
                banners.append(Banner(kind: "stuck", text: "\(jobs) queued for \(level.name) and no live worker takes them: "
                                      + "start one with relocator worker --levels \(level.name)."))
            } else if serving.allSatisfy({ list($0, .unavailable).contains(level.name) }) {
                banners.append(Banner(kind: "unavailable", text: "\(jobs) queued for \(level.name), which is out of service on every worker that "
                                      + "serves it (its directory is no longer the one checked at start, or does not answer): mount it back or restart the workers."))
            }
        }
        let waiting = stats.done + stats.committing
        if waiting > 0, !stats.workers.contains(where: { $0.alive && $0.info[.kind] == "committer" }) {
            banners.append(Banner(kind: "uncommitted", text: "\(waiting) finished move\(waiting == 1 ? "" : "s") wait\(waiting == 1 ? "s" : "") for the committer "
                                  + "and none runs: start relocator committer, or the database keeps the old levels."))
        }
        return banners
    }

    /// Redis or the database cannot be read: the page shows what was read at `readAt`.
    static func outage(_ message: String, readAt: Int64?, now: Int64) -> Banner {
        let shown = readAt.map { "; the page shows what was read at \(Human.time($0)) (\(Human.relative($0, now: now)))" }
            ?? "; nothing was read since this API process started"
        return Banner(kind: "outage", text: "Cannot read the data now: \(message)\(shown).")
    }
}

/// The links of a paged list: how many the list holds, how many this page shows, the first page
/// and the next one (cursors, never offsets).
struct Pager: Sendable {
    var name: String
    var total: Int
    var shown: Int
    var what: String
    var first: String?
    var next: String?

    /// `path?name=value&…` with the values escaped, nil values left out.
    static func href(_ path: String, _ parameters: [(String, String?)]) -> String {
        let query = parameters.compactMap { name, value in
            value.map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
        }
        return query.isEmpty ? path : path + "?" + query.joined(separator: "&")
    }

    /// The pager of `page`, whose cursor parameter is `cursorName` among the page's `others`.
    /// `what` names the items (`dead jobs`), `one` one of them (`dead job`) when that differs.
    static func of<T>(_ page: Page<T>, name: String, what: String, one: String? = nil, path: String, cursorName: String = "cursor",
                      current: String?, others: [(String, String?)] = []) -> Pager {
        Pager(name: name, total: page.total, shown: page.items.count, what: page.total == 1 ? one ?? what : what,
              first: current == nil ? nil : href(path, others),
              next: page.next.map { href(path, others + [(cursorName, $0)]) })
    }
}

/// A level's fill drawn as a bar against its watermarks.
struct FillBar: Sendable {
    struct Mark: Sendable { var at: String }
    var known: Bool
    /// The fill in percent, `21.0`; `width`, the same within 0…100 for the bar.
    var percent: String
    var width: String
    var text: String
    var detail: String
    var over: Bool
    var high: Mark?
    var low: Mark?

    init(_ disk: LevelDisk) {
        let percent = disk.percent
        known = percent != nil
        self.percent = percent.map { $0.formatted(decimals: 1) } ?? ""
        width = percent.map { min(100, max(0, $0)).formatted(decimals: 1) } ?? "0"
        text = Human.percent(percent)
        detail = disk.usage.map {
            "\(Human.bytes(max(0, $0.used))) used, \(Human.bytes(max(0, $0.free))) available (size \(Human.bytes(max(0, $0.size))))"
        } ?? ""
        high = disk.policy?.highWater.map { Mark(at: String($0)) }
        low = disk.policy?.highWater.flatMap { high in disk.policy?.lowWater.map { Mark(at: String(min(high, $0))) } }
        over = percent.flatMap { value in disk.policy?.highWater.map { value > Double($0) } } ?? false
    }
}

/// A level's disk as the live workers report it (the newest heartbeat's report), its fill as `df`
/// computes it — used / (used + available) — and its policy: the dashboard and `status` show it.
public struct LevelDisk: Sendable, Equatable {
    public var level: String
    public var usage: DiskReport.Usage?
    public var policy: LevelPolicy?

    public init(level: String, usage: DiskReport.Usage?, policy: LevelPolicy?) {
        self.level = level
        self.usage = usage
        self.policy = policy
    }

    /// The fill in percent, nil without a report.
    public var percent: Double? { usage.map { Placement.Usage($0).percent } }

    /// Every level of the table, in its order.
    public static func all(levels: [String], stats: QueueStats, policies: [String: LevelPolicy]) -> [LevelDisk] {
        let disks = QueueGauges.disks(stats)
        return levels.map { LevelDisk(level: $0, usage: disks[$0], policy: policies[$0]) }
    }

    /// `high water 90 % · low water 80 % · min residency 1 h 0 min · …`, or what rules without one.
    public var policyText: String {
        guard let policy, policy != LevelPolicy() else { return "no policy: the count alone decides" }
        var parts: [String] = []
        if let high = policy.highWater { parts.append("high water \(high) %") }
        if let low = policy.lowWater { parts.append("low water \(low) %") }
        if let residency = policy.minResidency, residency > 0 { parts.append("min residency \(Human.duration(seconds: Double(residency)))") }
        if let hysteresis = policy.hysteresis, hysteresis > 0 { parts.append("hysteresis \(hysteresis) %") }
        if let moves = policy.maxMoves, moves > 0 { parts.append("at most \(moves) moves at once") }
        if let bandwidth = policy.bandwidth, bandwidth > 0 { parts.append("\(Human.bytes(bandwidth))/s") }
        if let priority = policy.priority, priority != 0 { parts.append("priority \(priority)") }
        return parts.isEmpty ? "no policy: the count alone decides" : parts.joined(separator: " · ")
    }
}

/// Moves per minute over the last hour as an SVG with its axes: bars of moves, a line of commits.
struct ThroughputChart: Sendable {
    struct Bar: Sendable { var x: Int; var y: Int; var height: Int; var label: String }
    struct Tick: Sendable { var y: Int; var label: String }
    struct Label: Sendable { var x: Int; var label: String }

    static let left = 50, top = 10, plotHeight = 130, barWidth = 10

    var bars: [Bar]
    var commits: String
    var yTicks: [Tick]
    var xLabels: [Label]
    var bottom: Int
    var right: Int
    /// The drawing's width: the plot and room for the last label (`now`) centred on its edge.
    var width: Int
    var moved: Int64
    var movedThisMinute: Int64
    var movedBytes: String
    var committed: Int64

    init(moved: [ThroughputRing.Minute], committed: [ThroughputRing.Minute]) {
        let count = max(1, moved.count)
        let peak = max(moved.map(\.count).max() ?? 0, committed.map(\.count).max() ?? 0)
        let top = Self.niceCeiling(peak)
        let (left, plotTop, height, width) = (Self.left, Self.top, Self.plotHeight, Self.barWidth)
        bottom = plotTop + height
        right = left + count * width
        self.width = right + 25
        func y(_ value: Int64) -> Int { plotTop + height - Int(Int64(clamping: Double(value) * Double(height) / Double(top))) }
        bars = moved.enumerated().map { index, minute in
            let ago = count - 1 - index
            let barHeight = minute.count == 0 ? 0 : max(1, height + plotTop - y(minute.count))
            return Bar(x: left + index * width, y: plotTop + height - barHeight, height: barHeight,
                       label: "\(minute.count) move\(minute.count == 1 ? "" : "s") (\(Human.bytes(minute.bytes))) \(ago == 0 ? "this minute" : "\(ago) min ago")")
        }
        commits = committed.enumerated().map { index, minute in "\(left + index * width + width / 2),\(y(minute.count))" }.joined(separator: " ")
        yTicks = [0, top / 2, top].map { Tick(y: y($0), label: String($0)) }
        xLabels = stride(from: 0, through: count, by: 15).map { offset in
            Label(x: left + offset * width, label: offset == count ? "now" : "−\(count - offset) min")
        }
        self.moved = moved.reduce(0) { $0.saturatingAdd($1.count) }
        movedThisMinute = moved.last?.count ?? 0
        movedBytes = Human.bytes(moved.reduce(0) { $0.saturatingAdd($1.bytes) })
        self.committed = committed.reduce(0) { $0.saturatingAdd($1.count) }
    }

    /// The axis' top: 4, or 1, 2 or 5 times a power of ten from 10 on, at least the peak — always
    /// even, so the middle tick is a whole number at the middle.
    static func niceCeiling(_ value: Int64) -> Int64 {
        if value <= 4 { return 4 }
        var step: Int64 = 10
        while true {
            for factor: Int64 in [1, 2, 5] where step.saturatingMultiply(factor) >= value { return step.saturatingMultiply(factor) }
            if step > Int64.max / 10 { return Int64.max - 1 }
            step *= 10
        }
    }
}

struct OverviewModel: Sendable {
    struct Level: Sendable {
        var name: String
        var depth: Int
        var oldest: String
        var inFlight: Int
        var fill: FillBar
        var policy: String
        var paused: Bool
    }

    var levels: [Level]
    var processing: Int, retry: Int, deferred: Int, done: Int, dead: Int
    var moved: Int64, committed: Int64, workersAlive: Int, committersAlive: Int
    var chart: ThroughputChart

    init(stats: QueueStats, moves: [HeldMove], policies: [String: LevelPolicy], throughput: ThroughputChart) {
        let disks = Dictionary(uniqueKeysWithValues: LevelDisk.all(levels: stats.levels.map(\.name), stats: stats, policies: policies)
            .map { ($0.level, $0) })
        levels = stats.levels.map { level in
            let disk = disks[level.name] ?? LevelDisk(level: level.name, usage: nil, policy: nil)
            return Level(name: level.name, depth: level.depth,
                         oldest: Human.duration(seconds: level.oldestAgeMilliseconds.map { Double($0) / 1000 }),
                         inFlight: moves.filter { $0.job?.target == level.name }.count, fill: FillBar(disk), policy: disk.policyText,
                         paused: level.paused)
        }
        processing = stats.processing; retry = stats.retry; deferred = stats.deferred; done = stats.done; dead = stats.dead
        moved = stats.totals[.moved] ?? 0; committed = stats.totals[.committed] ?? 0
        workersAlive = stats.workers.filter { $0.alive && ($0.info[.kind] ?? "worker") == "worker" }.count
        committersAlive = stats.workers.filter { $0.alive && $0.info[.kind] == "committer" }.count
        chart = throughput
    }
}

struct WaitingModel: Sendable {
    struct Row: Sendable {
        var id: String
        var cid: String
        var filename: String
        var move: String
        var attempts: String
        var reason: String
        var lastError: String
        var due: String
        var dueIn: String
        var queuedBy: String
    }

    var deferred: [Row]
    var deferredPager: Pager
    var retrying: [Row]
    var retryingPager: Pager

    init(deferred: Page<ScheduledJob>, retrying: Page<ScheduledJob>, limit: Int, deferredCursor: String?,
         retryingCursor: String?, now: Int64) {
        let path = "/ui/waiting", limitText = limit == PageRequest.defaultLimit ? nil : String(limit)
        self.deferred = deferred.items.map { Self.row($0, now: now, why: { $0.deferReason }) }
        self.retrying = retrying.items.map { Self.row($0, now: now, why: { $0.reason }) }
        deferredPager = Pager.of(deferred, name: "deferred", what: "deferred", path: path, cursorName: "deferred_cursor", current: deferredCursor,
                                 others: [("limit", limitText), ("retrying_cursor", retryingCursor)])
        retryingPager = Pager.of(retrying, name: "retrying", what: "retrying", path: path, cursorName: "retrying_cursor", current: retryingCursor,
                                 others: [("limit", limitText), ("deferred_cursor", deferredCursor)])
    }

    static func row(_ entry: ScheduledJob, now: Int64, why: (Job) -> String?) -> Row {
        guard let job = entry.job else {
            return Row(id: entry.id, cid: JobID(entry.id).map { String($0.cid) } ?? entry.id, filename: "(job hash missing)", move: "–",
                       attempts: "–", reason: "–", lastError: "", due: Human.time(entry.due), dueIn: Human.relative(entry.due, now: now), queuedBy: "")
        }
        return Row(id: entry.id, cid: String(job.cid), filename: job.filename, move: "\(job.dbLevel) → \(job.target)", attempts: String(job.attempts),
                   reason: why(job) ?? "–", lastError: job.lastError ?? "", due: Human.time(entry.due), dueIn: Human.relative(entry.due, now: now),
                   queuedBy: job.queuedBy?.sentence ?? "")
    }
}

struct WorkersModel: Sendable {
    struct Process: Sendable {
        var id: String
        var host: String
        var levels: String
        var heartbeat: String
        var held: Int
        var alive: Bool
        var unavailable: String
    }

    struct Move: Sendable {
        var worker: String
        var cid: Int64
        var filename: String
        var from: String
        var to: String
        var done: String
        var total: String
        var percent: Int
        var rate: String
        var eta: String
        var reported: Bool
        /// A pull from another host: its two hosts (`PullRoute.sentence`).
        var crossHost: Bool
        var hosts: String
    }

    var workers: [Process]
    var committers: [Process]
    var moves: [Move]

    init(stats: QueueStats, moves held: [HeldMove], now host: Int64) {
        // Heartbeats and moves were stamped by Redis' clock: their ages are measured on it.
        let now = stats.clockMilliseconds ?? host
        let processes = stats.workers.map { worker -> (kind: String, Process) in
            let view = WorkerView(worker, now: now)
            let unavailable = worker.alive ? (worker.info[.unavailable] ?? "") : ""
            return (view.kind ?? "worker",
                    Process(id: view.id, host: view.host ?? "–", levels: view.levels.joined(separator: ", "),
                            heartbeat: view.alive ? Human.duration(seconds: view.heartbeatAgeSeconds) + " ago" : "expired",
                            held: view.held, alive: view.alive, unavailable: unavailable.replacingOccurrences(of: ",", with: ", ")))
        }
        workers = processes.filter { $0.kind != "committer" }.map(\.1)
        committers = processes.filter { $0.kind == "committer" }.map(\.1)
        moves = held.compactMap { move in
            guard let job = move.job else { return nil }
            return Self.move(worker: move.worker, job: job, now: now)
        }
    }

    /// A move's progress: bytes done of total, the average rate since it started, and the time
    /// left at that rate. A move reports its progress once it has run a second; before, it says so.
    static func move(worker: String, job: Job, now: Int64) -> Move {
        let done = job.bytesDone ?? 0
        let total = job.bytesTotal
        // Numbers read from the job hash: whatever they hold, nothing here overflows.
        let elapsed = job.startedAt.map { Double(max(1, now.saturatingSubtract($0))) / 1000 }
        let rate = elapsed.map { Double(done) / $0 }
        let percent = total.map { $0 > 0 ? Int(min(100, max(0, Double(done) * 100 / Double($0)))) : 100 } ?? 0
        let eta: Double? = {
            guard let total, let rate, rate > 0 else { return nil }
            return max(0, Double(total) - Double(done)) / rate
        }()
        return Move(worker: worker, cid: job.cid, filename: job.filename, from: job.dbLevel, to: job.target,
                    done: Human.bytes(done), total: Human.bytes(total), percent: percent, rate: Human.rate(bytesPerSecond: rate),
                    eta: Human.duration(seconds: eta), reported: total != nil, crossHost: job.pulledFrom != nil,
                    hosts: job.pulledFrom?.sentence ?? "")
    }
}

struct DeadModel: Sendable {
    struct Row: Sendable {
        var cid: String
        var filename: String
        var from: String
        var to: String
        var reason: String
        var attempts: String
        var lastError: String
        var when: String
        var queuedBy: String
    }

    var jobs: [Row]
    var pager: Pager
    var any: Bool

    init(page: Page<DeadLetter>, limit: Int, cursor: String?) {
        jobs = page.items.map { entry in
            guard let job = entry.job else {
                return Row(cid: JobID(entry.id).map { String($0.cid) } ?? entry.id, filename: "(job hash missing)", from: "–", to: "–",
                           reason: "–", attempts: "–", lastError: "", when: "–", queuedBy: "")
            }
            return Row(cid: String(job.cid), filename: job.filename, from: job.dbLevel, to: job.target, reason: job.reason ?? "–",
                       attempts: String(job.attempts), lastError: job.lastError ?? "", when: Timestamp(milliseconds: job.updatedAt).description,
                       queuedBy: job.queuedBy?.sentence ?? "")
        }
        any = page.total > 0
        pager = Pager.of(page, name: "dead", what: "dead jobs", one: "dead job", path: "/ui/dead", current: cursor,
                         others: [("limit", limit == PageRequest.defaultLimit ? nil : String(limit))])
    }
}

struct RelocationsModel: Sendable {
    struct Row: Sendable {
        var movedAt: String
        var cid: Int64
        var from: String
        var to: String
        var bytes: String
        var checksum: String
        var worker: String
        var attempts: Int
        var jobID: String
    }

    var cid: String?
    var rows: [Row]
    var pager: Pager

    init(cid: Int64?, page: Page<Relocation>, limit: Int, cursor: String?) {
        self.cid = cid.map(String.init)
        rows = page.items.map {
            Row(movedAt: $0.movedAt, cid: $0.cid, from: $0.from, to: $0.to, bytes: Human.bytes($0.bytes),
                checksum: String($0.checksum.prefix(24)) + ($0.checksum.count > 24 ? "…" : ""), worker: $0.worker,
                attempts: $0.attempts, jobID: $0.jobID)
        }
        pager = Pager.of(page, name: "relocations", what: "relocations", one: "relocation", path: "/ui/relocations", current: cursor,
                         others: [("cid", cid.map(String.init)), ("limit", limit == PageRequest.defaultLimit ? nil : String(limit))])
    }
}

/// The placement page: each level's fill now and after the plan, the plan's moves and why, and
/// the moves of the last hour from level to level.
struct PlacementModel: Sendable {
    struct Level: Sendable {
        var name: String
        var fill: FillBar
        var after: String
        var incoming: String
        var outgoing: String
        var policy: String
    }

    struct Move: Sendable {
        var cid: Int64
        var filename: String
        var from: String
        var to: String
        var kind: String
        var count: String
        var bytes: String
        var reason: String
    }

    struct Cell: Sendable {
        var moves: Int64
        var bytes: String
        var none: Bool
    }

    struct Row: Sendable {
        var from: String
        var cells: [Cell]
    }

    var levels: [Level]
    var moves: [Move]
    var pager: Pager
    var columns: [String]
    var matrix: [Row]
    var complete: Bool
    var hourMoves: Int64
    var hourBytes: String

    init(plan: Planner.Plan, disks: [LevelDisk], recent: (counts: [LevelMoves], complete: Bool), limit: Int, cursor: Int64?) {
        let fills = Dictionary(plan.levels.map { ($0.level, $0) }, uniquingKeysWith: { a, _ in a })
        levels = disks.map { disk in
            let fill = fills[disk.level]
            return Level(name: disk.level, fill: FillBar(disk), after: Human.percent(fill?.projectedPercent),
                         incoming: Human.bytes(fill?.incoming ?? 0), outgoing: Human.bytes(fill?.outgoing ?? 0), policy: disk.policyText)
        }
        // The plan's moves by cid: a cursor names the last cid shown.
        let sorted = plan.moves.sorted { $0.cid < $1.cid }
        let after = sorted.filter { cursor == nil || $0.cid > cursor! }
        let shown = Array(after.prefix(limit))
        moves = shown.map {
            Move(cid: $0.cid, filename: $0.filename ?? "", from: $0.from, to: $0.to, kind: $0.kind.rawValue,
                 count: $0.count.map(\.countText) ?? "–", bytes: $0.bytes.map { Human.bytes($0) } ?? "–", reason: $0.reason)
        }
        let page = Page(items: shown, total: sorted.count, next: after.count > limit ? shown.last.map { String($0.cid) } : nil)
        pager = Pager.of(page, name: "plan", what: "planned moves", one: "planned move", path: "/ui/placement", current: cursor.map(String.init),
                         others: [("limit", limit == PageRequest.defaultLimit ? nil : String(limit))])
        let names = disks.map(\.level)
        columns = names
        let counts = Dictionary(recent.counts.map { ("\($0.from)\u{0}\($0.to)", $0) }, uniquingKeysWith: { a, _ in a })
        matrix = names.map { from in
            Row(from: from, cells: names.map { to in
                let entry = counts["\(from)\u{0}\(to)"]
                return Cell(moves: entry?.moves ?? 0, bytes: Human.bytes(entry?.bytes ?? 0), none: entry == nil)
            })
        }
        complete = recent.complete
        hourMoves = recent.counts.reduce(0) { $0.saturatingAdd($1.moves) }
        hourBytes = Human.bytes(recent.counts.reduce(0) { $0.saturatingAdd($1.bytes) })
    }
}

struct LevelsModel: Sendable {
    struct Row: Sendable {
        var name: String
        var min: Int64
        var max: Int64
        var directory: String
        var paused: Bool
        var policy: String
        var fill: FillBar
    }

    var levels: [Row]

    init(ranges: [LevelRange], paused: Set<String>, directories: LevelDirectories?, disks: [LevelDisk]) {
        let byLevel = Dictionary(disks.map { ($0.level, $0) }, uniquingKeysWith: { a, _ in a })
        levels = ranges.map {
            let disk = byLevel[$0.name] ?? LevelDisk(level: $0.name, usage: nil, policy: nil)
            return Row(name: $0.name, min: $0.minCounts, max: $0.maxCounts, directory: directories?.directory(of: $0.name) ?? "–",
                       paused: paused.contains($0.name), policy: disk.policyText, fill: FillBar(disk))
        }
    }
}
