import Hummingbird
import JobQueue
import Mustache
import RelocatorCore
import RelocatorMetrics
import SQLStore

/// The dashboard's pages, rendered on the server from the templates of `Dashboard/` (compiled
/// into the binary). Each page is readable without JavaScript; the one script refreshes its data
/// every 2 s and runs the action buttons. The models are plain values, built by pure functions
/// from what Redis and SQL said, so rendering is tested without servers.
public struct Dashboard: Sendable {
    let library: MustacheLibrary

    public static let pages: [(name: String, label: String, href: String)] = [
        ("overview", "Overview", "/ui"), ("workers", "Workers", "/ui/workers"), ("dead", "Dead letters", "/ui/dead"),
        ("relocations", "Relocations", "/ui/relocations"), ("levels", "Levels", "/ui/levels"),
    ]

    static let templates: [(String, [UInt8])] = [
        ("layout", PackageResources.layout_mustache), ("overview", PackageResources.overview_mustache),
        ("workers", PackageResources.workers_mustache), ("dead", PackageResources.dead_mustache),
        ("relocations", PackageResources.relocations_mustache), ("levels", PackageResources.levels_mustache),
        ("error", PackageResources.error_mustache),
    ]

    static let script = PackageResources.dashboard_js
    static let stylesheet = PackageResources.dashboard_css

    public init() throws {
        var library = MustacheLibrary()
        for (name, bytes) in Self.templates { try library.register(String(decoding: bytes, as: UTF8.self), named: name) }
        self.library = library
    }

    struct NavItem { var href: String; var label: String; var current: Bool }

    struct Layout {
        var title: String
        var nav: [NavItem]
        var generatedAt: String
        var adminRequired: Bool
        var body: String
    }

    /// A whole page: `model` rendered with the page's template inside the layout.
    /// With `adminRequired`, the action buttons stay hidden until the tab gives the administrator
    /// credential (the page is read-only until then).
    public func render(page: String, model: Any, adminRequired: Bool, now: Int64) -> String {
        let body = library.render(model, withTemplate: page) ?? ""
        let title = Self.pages.first { $0.name == page }?.label ?? "Error"
        let layout = Layout(title: title, nav: Self.pages.map { NavItem(href: $0.href, label: $0.label, current: $0.name == page) },
                            generatedAt: String(Timestamp(milliseconds: now).description.prefix(19)).replacingOccurrences(of: "T", with: " ") + " UTC",
                            adminRequired: adminRequired, body: body)
        return library.render(layout, withTemplate: "layout") ?? body
    }
}

// MARK: - Models

/// Numbers as people read them.
enum Human {
    static func bytes(_ value: Int64?) -> String {
        guard let value else { return "–" }
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var amount = Double(value), unit = 0
        while amount >= 1024 && unit < units.count - 1 { amount /= 1024; unit += 1 }
        return unit == 0 ? "\(value) B" : "\(amount.formatted(decimals: amount < 10 ? 1 : 0)) \(units[unit])"
    }

    static func duration(seconds: Double?) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0 else { return "–" }
        if seconds < 1 { return "\(Int((seconds * 1000).rounded())) ms" }
        if seconds < 60 { return "\(seconds.formatted(decimals: seconds < 10 ? 1 : 0)) s" }
        let whole = Int(Int64(clamping: seconds.rounded()))
        if whole < 3600 { return "\(whole / 60) min \(whole % 60) s" }
        return "\(whole / 3600) h \(whole % 3600 / 60) min"
    }

    static func rate(bytesPerSecond: Double?) -> String {
        guard let bytesPerSecond, bytesPerSecond.isFinite, bytesPerSecond > 0 else { return "–" }
        return bytes(Int64(clamping: bytesPerSecond)) + "/s"
    }
}

struct OverviewModel {
    struct Level { var name: String; var depth: Int; var oldest: String; var inFlight: Int; var diskUsed: String; var diskFree: String; var paused: Bool }
    struct Bar { var x: Int; var y: Int; var height: Int; var label: String }
    var levels: [Level]
    var processing: Int, retry: Int, deferred: Int, done: Int, dead: Int
    var moved: Int64, committed: Int64, workersAlive: Int
    var movesLastHour: Int, movesThisMinute: Int
    var bars: [Bar]

    init(stats: QueueStats, moves: [JobQueue.HeldMove], perMinute: [Int]) {
        let disks = QueueGauges.disks(stats)
        levels = stats.levels.map { level in
            Level(name: level.name, depth: level.depth, oldest: Human.duration(seconds: level.oldestAgeMilliseconds.map { Double($0) / 1000 }),
                  inFlight: moves.filter { $0.job?.target == level.name }.count,
                  diskUsed: Human.bytes(disks[level.name]?.used), diskFree: Human.bytes(disks[level.name]?.free), paused: level.paused)
        }
        processing = stats.processing; retry = stats.retry; deferred = stats.deferred; done = stats.done; dead = stats.dead
        moved = stats.totals[.moved] ?? 0; committed = stats.totals[.committed] ?? 0
        workersAlive = stats.workers.filter(\.alive).count
        movesLastHour = perMinute.reduce(0, +)
        movesThisMinute = perMinute.last ?? 0
        let top = max(1, perMinute.max() ?? 1)
        bars = perMinute.enumerated().map { index, count in
            let height = count == 0 ? 0 : max(1, count * 96 / top)
            let minutesAgo = perMinute.count - 1 - index
            return Bar(x: index * 10, y: 100 - height, height: height, label: "\(count) moves \(minutesAgo == 0 ? "this minute" : "\(minutesAgo) min ago")")
        }
    }
}

struct WorkersModel {
    struct Worker { var id: String; var kind: String; var host: String; var levels: String; var heartbeat: String; var held: Int; var alive: Bool }
    struct Move { var worker: String; var cid: Int64; var filename: String; var from: String; var to: String
        var done: String; var total: String; var percent: Int; var rate: String; var eta: String }
    var workers: [Worker]
    var moves: [Move]

    init(stats: QueueStats, moves held: [JobQueue.HeldMove], now: Int64) {
        workers = stats.workers.map { worker in
            let view = WorkerView(worker, now: now)
            return Worker(id: view.id, kind: view.kind ?? "–", host: view.host ?? "–", levels: view.levels.joined(separator: ", "),
                          heartbeat: view.alive ? Human.duration(seconds: view.heartbeatAgeSeconds) + " ago" : "expired",
                          held: view.held, alive: view.alive)
        }
        moves = held.compactMap { move in
            guard let job = move.job else { return nil }
            return Self.move(worker: move.worker, job: job, now: now)
        }
    }

    /// A move's progress: bytes done of total, the average rate since it started, and the time left at that rate.
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
                    eta: Human.duration(seconds: eta))
    }
}

struct DeadModel {
    struct Row { var cid: String; var filename: String; var from: String; var to: String; var reason: String
        var attempts: String; var lastError: String; var when: String }
    var jobs: [Row]

    init(dead: [JobQueue.DeadJob]) {
        jobs = dead.map { entry in
            guard let job = entry.job else {
                return Row(cid: JobID(entry.id).map { String($0.cid) } ?? entry.id, filename: "(job hash missing)", from: "–", to: "–",
                           reason: "–", attempts: "–", lastError: "", when: "–")
            }
            return Row(cid: String(job.cid), filename: job.filename, from: job.dbLevel, to: job.target, reason: job.reason ?? "–",
                       attempts: String(job.attempts), lastError: job.lastError ?? "", when: Timestamp(milliseconds: job.updatedAt).description)
        }
    }
}

struct RelocationsModel {
    struct Row { var movedAt: String; var cid: Int64; var from: String; var to: String; var bytes: String
        var checksum: String; var worker: String; var attempts: Int; var jobID: String }
    var cid: String?
    var rows: [Row]

    init(cid: Int64?, relocations: [Relocation]) {
        self.cid = cid.map(String.init)
        rows = relocations.map {
            Row(movedAt: $0.movedAt, cid: $0.cid, from: $0.from, to: $0.to, bytes: Human.bytes($0.bytes),
                checksum: String($0.checksum.prefix(24)) + ($0.checksum.count > 24 ? "…" : ""), worker: $0.worker,
                attempts: $0.attempts, jobID: $0.jobID)
        }
    }
}

struct LevelsModel {
    struct Row { var name: String; var min: Int64; var max: Int64; var directory: String; var paused: Bool }
    var levels: [Row]

    init(ranges: [LevelRange], paused: Set<String>, directories: LevelDirectories?) {
        levels = ranges.map {
            Row(name: $0.name, min: $0.minCounts, max: $0.maxCounts, directory: directories?.directory(of: $0.name) ?? "–",
                paused: paused.contains($0.name))
        }
    }
}
