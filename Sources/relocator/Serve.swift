import ArgumentParser
import Foundation
import Hummingbird
import JobQueue
import Logging
import RedisClient
import RelocatorAPI
import RelocatorCore
import SQLStore

extension Relocator {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the HTTP API.")

        @OptionGroup var runtime: RuntimeOptions

        @Option(help: "Address to listen on.")
        var host = "127.0.0.1"

        @Option(help: "Port to listen on (0: any free port, printed at start).")
        var port = 8080

        func run() async throws {
            Logs.bootstrap()
            let logger = runtime.logger("relocator.api")
            let service = try makeService(runtime, logger: logger)
            defer { service.close() }
            let token = ProcessInfo.processInfo.environment["RELOCATOR_API_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            let app = buildApplication(
                service: service, configuration: APIConfiguration(host: host, port: port, token: token), logger: logger,
                onServerRunning: { port in
                    // One line on stdout that scripts can wait for.
                    print("listening on http://\(host):\(port)")
                    fflush(nil)
                })
            try await app.runService()
        }
    }
}

/// The pools and the service the API and `enqueue` share.
func makeService(_ runtime: RuntimeOptions, logger: Logger) throws -> RelocationService {
    let redis = RedisPool(url: try runtime.redis(), size: 8)
    let sql = SQLPool(url: try runtime.database.resolve(), size: 4)
    // The level directories are optional here: an API on a machine without the disks skips the symlink check.
    let directories = try runtime.environment["RELOCATOR_LEVELS"].flatMap { $0.isEmpty ? nil : try LevelDirectories(parsing: $0) }
    return RelocationService(redis: redis, sql: sql, queue: JobQueue(keys: try runtime.keys()), jobTTL: try runtime.jobTTL(),
                             directories: directories, logger: logger)
}
