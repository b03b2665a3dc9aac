import ArgumentParser
import Foundation
import Logging
import RelocatorAPI
import RelocatorApp
import RelocatorCore
import RelocatorMetrics

extension Relocator {
    struct Status: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the queues, the workers and committers, and the totals.",
            discussion: """
                Per level: jobs waiting, how long the oldest has waited, whether the level is paused. Per worker and \
                committer: id, kind, host, levels, heartbeat age, jobs in hand and the port of its metrics. Then processing, retry, deferred, \
                dead, done and committing, and the totals moved, retried, dead and committed. Says plainly when no \
                worker or no committer is running. Then each move in flight: its worker, levels, bytes done of \
                the total and, for a pull from another host, the two hosts. --json prints what GET /v1/queues \
                answers, with `levels`, `workers_running`, `committers_running`, each worker's `metrics_port` \
                and `moves` added.
                """)

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var logging: LogOptions
        @Flag(help: "Print JSON (times RFC 3339, ages in milliseconds).") var json = false

        func run() async throws {
            let service = try makeService(runtime, database, access: .readOnly,
                                          logger: Logger(label: "relocator.status", factory: { _ in SwiftLogNoOpLogHandler() }))
            defer { service.close() }
            let stats = try await service.stats()
            let moves = try await service.movesInFlight(workers: stats.workers.map(\.id))
            // Heartbeats and moves were stamped by Redis' clock: their ages are measured on it.
            let now = stats.clockMilliseconds ?? WallClock.milliseconds()
            let report = StatusReport(stats, moves: moves, now: now)
            if json { return try JSONOutput.print(object: try report.json(QueuesView(stats, now: now))) }
            print(report.text)
        }
    }
}

/// What `status` shows, built from `QueueStats` (pure, for the text and the JSON).
struct StatusReport {
    struct Level {
        var name: String
        var queued: Int
        var oldestAgeMilliseconds: Int64?
        var paused: Bool
        /// The level's fill as `df` shows it (used / (used + available), percent), from the
        /// newest live heartbeat that reports the level; nil without one.
        var fillPercent: Double?
    }

    struct Process {
        var id: String
        var kind: String
        var host: String?
        var levels: [String]
        var alive: Bool
        var heartbeatAgeMilliseconds: Int64?
        var jobsInHand: Int
        /// Levels out of service for this worker: their directory is no longer the one it checked.
        var unavailable: [String]
        /// The port of its metrics server (`GET /metrics`), when it serves one.
        var metricsPort: Int?
    }

    /// A move a worker holds: its levels, bytes done of the total (the bytes verified, for a pull
    /// from another host) and, for a pull, its two hosts.
    struct Move {
        var worker: String
        var id: String
        var cid: Int64
        var filename: String
        var from: String
        var to: String
        var bytesDone: Int64
        var bytesTotal: Int64?
        var pulledFrom: PullRoute?
    }

    var levels: [Level]
    var paused: [String]
    var moves: [Move]
    var processes: [Process]
    var workersRunning: Int
    /// Queued jobs that no live worker takes, and what to do.
    var waiting: [String]
    var committersRunning: Int
    var processing, retry, deferred, dead, done, committing: Int
    var totals: [String: Int64]

    init(_ stats: QueueStats, moves held: [HeldMove] = [], now: Int64) {
        // Jobs no live worker takes (the dashboard's banners; a pause and a missing committer have lines of their own).
        waiting = Banner.from(stats).filter { $0.kind == "stuck" || $0.kind == "unavailable" }.map(\.text)
        moves = held.compactMap { move in
            move.job.map {
                Move(worker: move.worker, id: move.id, cid: $0.cid, filename: $0.filename, from: $0.dbLevel, to: $0.target,
                     bytesDone: $0.bytesDone ?? 0, bytesTotal: $0.bytesTotal, pulledFrom: $0.pulledFrom)
            }
        }
        let disks = QueueGauges.disks(stats)
        levels = stats.levels.map {
            Level(name: $0.name, queued: $0.depth, oldestAgeMilliseconds: $0.oldestAgeMilliseconds, paused: $0.paused,
                  fillPercent: disks[$0.name].map { Placement.Usage($0).percent })
        }
        paused = stats.levels.filter(\.paused).map(\.name)
        processes = stats.workers.map { worker in
            let beat = worker.info[.beatAt].flatMap(Int64.init)
            return Process(
                id: worker.id, kind: worker.info[.kind] ?? "unknown", host: worker.info[.host],
                levels: worker.info[.levels].map { $0.split(separator: ",").map(String.init) } ?? [], alive: worker.alive,
                heartbeatAgeMilliseconds: beat.map { max(0, now.saturatingSubtract($0)) }, jobsInHand: worker.held,
                unavailable: worker.alive ? worker.info[.unavailable].map { $0.split(separator: ",").map(String.init) } ?? [] : [],
                metricsPort: worker.alive ? worker.info[.metricsPort].flatMap(Int.init) : nil)
        }
        workersRunning = processes.filter { $0.alive && $0.kind == "worker" }.count
        committersRunning = processes.filter { $0.alive && $0.kind == "committer" }.count
        processing = stats.processing
        retry = stats.retry
        deferred = stats.deferred
        dead = stats.dead
        done = stats.done
        committing = stats.committing
        totals = Dictionary(uniqueKeysWithValues: StatField.allCases.map { ($0.rawValue, stats.totals[$0] ?? 0) })
    }

    /// `status --json`: what `/v1/queues` answers (`queues`), with each level in order
    /// (`levels`: name, queued, oldest_age_seconds, paused, fill_percent as `df` computes it) and how
    /// many workers and committers run.
    func json(_ queues: QueuesView) throws -> [String: Any] {
        guard var object = try JSONSerialization.jsonObject(with: RelocatorJSON.data(queues)) as? [String: Any] else {
            throw CommandFailure("the queues' JSON is not an object")
        }
        object["levels"] = levels.map { level -> [String: Any] in
            ["name": level.name, "queued": level.queued, "paused": level.paused,
             "oldest_age_seconds": level.oldestAgeMilliseconds.map { Double($0) / 1000 as Any } ?? NSNull(),
             "fill_percent": level.fillPercent.map { ($0 * 10).rounded() / 10 as Any } ?? NSNull()]
        }
        // Each process's metrics port, beside what /v1/queues says of it.
        if let workers = object["workers"] as? [[String: Any]] {
            let ports = Dictionary(processes.map { ($0.id, $0.metricsPort) }, uniquingKeysWith: { first, _ in first })
            object["workers"] = workers.map { worker -> [String: Any] in
                var worker = worker
                worker["metrics_port"] = (worker["id"] as? String).flatMap { ports[$0] ?? nil } ?? NSNull()
                return worker
            }
        }
        object["moves"] = moves.map { move -> [String: Any] in
            ["worker": move.worker, "id": move.id, "cid": move.cid, "filename": move.filename, "from": move.from, "to": move.to,
             "bytes_done": move.bytesDone, "bytes_total": move.bytesTotal.map { $0 as Any } ?? NSNull(),
             "pulled_from": move.pulledFrom.map { route -> Any in
                 ["from_worker": route.sourceWorker, "from_address": route.sourceAddress, "to_host": route.targetHost]
             } ?? NSNull()]
        }
        object["workers_running"] = workersRunning
        object["committers_running"] = committersRunning
        return object
    }

    var text: String {
        var queues = TextTable("level", "queued", "oldest", "paused", "fill")
        for level in levels {
            queues.add([level.name, String(level.queued), level.oldestAgeMilliseconds.map { TimeText.age(milliseconds: $0) }.cell,
                        level.paused ? "paused" : "no", level.fillPercent.map { String(format: "%.1f%%", $0) } ?? "-"])
        }
        var lines = [queues.text, ""]
        if processes.isEmpty {
            lines.append("no worker or committer has announced itself")
        } else {
            var table = TextTable("id", "kind", "host", "levels", "heartbeat", "jobs_in_hand", "metrics")
            for process in processes {
                let beat = process.alive ? process.heartbeatAgeMilliseconds.map { "\(TimeText.age(milliseconds: $0)) ago" } ?? "-" : "expired"
                table.add([process.id, process.kind, process.host.cell, process.levels.isEmpty ? "-" : process.levels.joined(separator: ","),
                           beat, String(process.jobsInHand), process.metricsPort.map { ":\($0)" } ?? "-"])
            }
            lines.append(table.text)
        }
        if workersRunning == 0 { lines.append("no worker is running: nothing moves files") }
        lines += waiting
        if committersRunning == 0 { lines.append("no committer is running: finished moves are not recorded in the database") }
        if !paused.isEmpty { lines.append("paused: \(paused.joined(separator: ", ")) (relocator resume LEVEL)") }
        for process in processes where !process.unavailable.isEmpty {
            lines.append("level \(process.unavailable.joined(separator: ", ")) out of service on \(process.id): its directory is not the one the worker checked at start (unmounted or replaced), does not answer a check, or has no \(ReservedDirectory.name)/ although the level was in use before (its disk not mounted); mount it back, restart the worker, or `relocator levels init \(process.unavailable.first ?? "<level>")` for a new disk (the worker's log says which)")
        }
        if !moves.isEmpty {
            var table = TextTable("worker", "cid", "from → to", "hosts", "progress")
            for move in moves {
                let progress = move.bytesTotal.map { total in
                    let percent = total > 0 ? Int(min(100, max(0, Double(move.bytesDone) * 100 / Double(total)))) : 100
                    return "\(OperatorValues.formatBytes(move.bytesDone)) of \(OperatorValues.formatBytes(total)) (\(percent)%)"
                } ?? "starting"
                table.add([move.worker, String(move.cid), "\(move.from) → \(move.to)", move.pulledFrom?.sentence ?? "-", progress])
            }
            lines.append("")
            lines.append("moves in flight:")
            lines.append(table.text)
        }
        lines.append("")
        lines.append("jobs: processing \(processing), retry \(retry), deferred \(deferred), dead \(dead), done \(done), committing \(committing)")
        let moved = totals[StatField.moved.rawValue] ?? 0, bytes = totals[StatField.movedBytes.rawValue] ?? 0
        lines.append("totals: moved \(moved) (\(OperatorValues.formatBytes(bytes))), retried \(totals[StatField.retried.rawValue] ?? 0), "
                     + "dead \(totals[StatField.dead.rawValue] ?? 0), committed \(totals[StatField.committed.rawValue] ?? 0)")
        return lines.joined(separator: "\n")
    }
}
