import ArgumentParser
import FileMover
import Foundation
import JobQueue
import RelocatorCore
import RelocatorServices
import ServiceLifecycle
import SQLStore
import Synchronization

extension Relocator {
    struct WorkerCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "worker", abstract: "Move files for the queues of some levels.")

        @OptionGroup var runtime: RuntimeOptions

        @Option(help: "Levels whose queues this worker serves, comma-separated (default: every level of RELOCATOR_LEVELS).")
        var levels: String?

        @Option(help: "Moves at once in this process.")
        var concurrency = 4

        @Option(help: "The worker's name, unique among running workers (default: host:pid).")
        var id: String?

        @Option(help: "level=directory pairs (default: $RELOCATOR_LEVELS).")
        var levelDirs: String?

        @Option(help: "Seconds that moves in flight get to finish after SIGTERM before they are cancelled and handed back.")
        var gracePeriod = 30

        func validate() throws {
            guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 256") }
            guard gracePeriod >= 0 else { throw ValidationError("--grace-period must be ≥ 0") }
            if let id, id.isEmpty || id.contains(where: { $0.isWhitespace }) || id.count > 128 {
                throw ValidationError("--id must be 1–128 characters without spaces")
            }
        }

        func run() async throws {
            Logs.bootstrap()
            let directories = try runtime.levelDirectories(flag: levelDirs)
            _ = try verifyLevelLayout(directories, setting: levelDirs == nil ? "RELOCATOR_LEVELS" : "--level-dirs")
            var served = directories.names
            if let levels {
                served = levels.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                for level in served where directories.directory(of: level) == nil {
                    throw ValidationError("--levels: '\(level)' has no directory in \(levelDirs == nil ? "RELOCATOR_LEVELS" : "--level-dirs") (\(directories.names.joined(separator: ", ")))")
                }
                guard !served.isEmpty else { throw ValidationError("--levels names no level") }
            }
            let logger = runtime.logger("relocator.worker")
            let faults = try WorkerFaults(parsing: runtime.environment["RELOCATOR_FAULTS"])
            if faults.isActive { logger.critical("RELOCATOR_FAULTS is set: this worker injects faults (for tests only)") }
            var settings = Worker.Settings(
                id: id ?? "\(ProcessInfo.processInfo.hostName):\(getpid())", levels: served, directories: directories,
                concurrency: concurrency, retry: try runtime.retryPolicy(), heartbeatTTL: try runtime.heartbeatTTL(),
                gracePeriod: .seconds(gracePeriod))
            settings.faults = faults
            let worker = Worker(settings: settings, driver: RedisQueueDriver(queue: JobQueue(keys: try runtime.keys()), url: try runtime.redis()),
                                mover: FileMover(algorithm: try runtime.checksumAlgorithm(), faults: faults.move), logger: logger)
            let group = ServiceGroup(configuration: .init(services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }

    struct CommitterCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "committer", abstract: "Record finished moves in the database, in batches.")

        @OptionGroup var runtime: RuntimeOptions

        @Option(help: "Jobs per transaction.")
        var batch = 500

        @Option(help: "The committer's name (default: committer-host:pid).")
        var id: String?

        func validate() throws {
            guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be between 1 and 100000") }
        }

        func run() async throws {
            Logs.bootstrap()
            let logger = runtime.logger("relocator.committer")
            let database = try runtime.database.resolve()
            let committer = Committer(
                settings: .init(id: id ?? "committer-\(ProcessInfo.processInfo.hostName):\(getpid())", batch: batch,
                                jobTTL: try runtime.jobTTL(), heartbeatTTL: try runtime.heartbeatTTL()),
                driver: RedisQueueDriver(queue: JobQueue(keys: try runtime.keys()), url: try runtime.redis()),
                openDatabase: { try openDatabase(database) }, logger: logger)
            let group = ServiceGroup(configuration: .init(services: [committer], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }
}
