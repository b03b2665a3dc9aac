import ArgumentParser
import FileMover
import Foundation
import JobQueue
import RelocatorCore
import RelocatorServices
import ServiceLifecycle
import SQLStore

extension Relocator {
    struct WorkerCommand: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            commandName: "worker", abstract: "Move files for the queues of some levels.",
            discussion: """
                Needs RELOCATOR_LEVELS (or --level-dirs) with every level's directory as this machine sees it. \
                Waits for Redis while it is unreachable, with one log line per outage. SIGTERM or SIGINT: no new \
                job is taken, moves in flight get --grace-period seconds, then are cancelled and handed back.
                """)

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var logging: LogOptions

        @Option(help: "Levels whose queues this worker serves, comma-separated (default: every level of --level-dirs or RELOCATOR_LEVELS).")
        var levels: String?

        @Option(parsing: .unconditional, help: "Moves at once in this process, 1 to 256. (default: 4)", transform: OptionValue.int(1...256))
        var concurrency = 4

        @Option(help: "The worker's name, unique among running workers, 1 to 128 characters without spaces (default: host:pid).")
        var id: String?

        @Option(help: "level=directory pairs, e.g. gold=/data/ssd,silver=/data/hdd (default: $RELOCATOR_LEVELS).")
        var levelDirs: String?

        @Option(parsing: .unconditional,
                help: "Seconds, 0 to 86400, that moves in flight get to finish after SIGTERM before they are cancelled and handed back. (default: 30)",
                transform: OptionValue.int(0...86400))
        var gracePeriod = 30

        @OptionGroup var metrics: MetricsOptions

        func validate() throws {
            if let id, id.isEmpty || id.contains(where: { $0.isWhitespace }) || id.count > 128 {
                throw ValidationError("--id must be 1 to 128 characters without spaces")
            }
        }

        func run() async throws {
            let (directories, setting) = try runtime.levelDirectories(flag: levelDirs)
            _ = try verifyLevelLayout(directories, setting: setting)
            let served = try Self.servedLevels(levels, directories: directories, setting: setting)
            let logger = Logs.logger("relocator.worker")
            let faults = try WorkerFaults(parsing: runtime.environment["RELOCATOR_FAULTS"])
            if faults.isActive { logger.critical("RELOCATOR_FAULTS is set: this worker injects faults (for tests only)") }
            var settings = Worker.Settings(
                id: id ?? "\(ProcessInfo.processInfo.hostName):\(getpid())", levels: served, directories: directories,
                concurrency: concurrency, retry: try runtime.retryPolicy(), heartbeatTTL: try runtime.heartbeatTTL(),
                gracePeriod: .seconds(gracePeriod))
            settings.faults = faults
            settings.deferRetry = try runtime.deferRetry()
            // The level directories checked above stay open for the worker's life: a level whose path
            // later names another directory (unmounted, remounted) is taken out of service.
            let held = try HeldLevels(directories)
            let worker = Worker(settings: settings, driver: RedisJobQueueDriver(queue: JobQueue(keys: try runtime.keys()), url: try runtime.redis()),
                                mover: FileMover(algorithm: try runtime.checksumAlgorithm(), faults: faults.move, levels: held),
                                levels: held, logger: logger)
            let services: [any Service] = [worker] + (try await metrics.services(logger: logger) { worker.metricsServed(on: $0) })
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }

        /// `--levels`, each of which must have a directory in `directories` (from `setting`).
        static func servedLevels(_ text: String?, directories: LevelDirectories, setting: String) throws -> [String] {
            guard let text else { return directories.names }
            let served = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !served.isEmpty else { throw CommandFailure("--levels names no level") }
            let unknown = served.filter { directories.directory(of: $0) == nil }
            guard unknown.isEmpty else {
                throw CommandFailure("--levels: \(unknown.map { "'\($0)'" }.joined(separator: ", ")) \(unknown.count == 1 ? "has" : "have") no directory in \(setting), which names \(directories.names.joined(separator: ", "))")
            }
            return served
        }
    }

    struct CommitterCommand: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            commandName: "committer", abstract: "Record finished moves in the database, in batches.",
            discussion: """
                Logs at start when the database is missing or not migrated; waits for Redis and the database while \
                they are unreachable (one log line per outage). SIGTERM or SIGINT: the batch in hand is finished, \
                what it holds goes back.
                """)

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var logging: LogOptions

        @Option(parsing: .unconditional, help: "Jobs per transaction, 1 to 100000. (default: 500)", transform: OptionValue.int(1...100_000))
        var batch = 500

        @Option(help: "The committer's name, 1 to 128 characters without spaces (default: committer-host:pid).")
        var id: String?

        @Option(help: "How often the rebalancer looks at the levels' watermarks and decayed counts (90s, 5m…), or 'off'. Several committers may run it: one at a time holds its lock.")
        var rebalanceInterval = "5s"

        @OptionGroup var metrics: MetricsOptions

        func validate() throws {
            if let id, id.isEmpty || id.contains(where: { $0.isWhitespace }) || id.count > 128 {
                throw ValidationError("--id must be 1 to 128 characters without spaces")
            }
            if rebalanceInterval != "off" {
                do {
                    guard try OperatorValues.durationSeconds(rebalanceInterval) >= 1 else {
                        throw ValidationError("--rebalance-interval must be at least 1s, or 'off'")
                    }
                } catch let error as OperatorValues.Invalid {
                    throw ValidationError("--rebalance-interval: \(error.description), or 'off'")
                }
            }
        }

        func run() async throws {
            let logger = Logs.logger("relocator.committer")
            let url = try database.resolve()
            await StartupCheck.log(redis: nil, database: database, logger: logger)
            let name = id ?? "committer-\(ProcessInfo.processInfo.hostName):\(getpid())"
            let queue = JobQueue(keys: try runtime.keys())
            let halfLife = try runtime.halfLife()
            var settings = Committer.Settings(id: name, batch: batch, jobTTL: try runtime.jobTTL(), heartbeatTTL: try runtime.heartbeatTTL())
            settings.halfLife = halfLife
            let committer = Committer(settings: settings, driver: RedisJobQueueDriver(queue: queue, url: try runtime.redis()),
                                      openDatabase: { try openDatabase(url, access: .readWrite) }, logger: logger)
            var services: [any Service] = [committer]
            if rebalanceInterval != "off" {
                // Placement (watermarks, displacement, decay) runs here: the committer already holds the
                // database and Redis, and the rebalancer's lock lets several committers run it safely.
                var rebalancing = Rebalancer.Settings(id: name, halfLife: halfLife)
                rebalancing.interval = .seconds(try OperatorValues.durationSeconds(rebalanceInterval))
                services.append(Rebalancer(settings: rebalancing, driver: RedisJobQueueDriver(queue: queue, url: try runtime.redis()),
                                           openDatabase: { try openDatabase(url, access: .readWrite) },
                                           logger: Logs.logger("relocator.rebalancer")))
            }
            services += try await metrics.services(logger: logger) { committer.metricsServed(on: $0) }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }
}
