import RelocatorApp
import ArgumentParser
import FileMover
import Foundation
import Hummingbird
import Logging
import RelocatorAPI
import RelocatorCore
import RelocatorMetrics
import RelocatorServices

extension Relocator {
    struct Serve: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the HTTP API.",
            discussion: """
                Starts even when Redis is unreachable or the database is not migrated: it logs what is missing \
                and /readyz answers 503 until it is there. Prints `listening on http://HOST:PORT` once it listens. \
                Credentials (bearer tokens): RELOCATOR_SUBMIT_TOKEN for counts and hits, RELOCATOR_ADMIN_TOKEN for \
                pause, resume, replay and purge (it opens every route), RELOCATOR_READ_TOKEN for every read but \
                /healthz and /readyz; RELOCATOR_API_TOKEN stands for the first two where they are not set. On an \
                address other than loopback, serve refuses to start without an administrator credential unless \
                --allow-open-admin. RELOCATOR_LEVELS, when set, lets the API refuse a filename that passes through \
                a symbolic link.
                """)

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var logging: LogOptions

        @Option(help: "Address to listen on.")
        var host = "127.0.0.1"

        @Option(parsing: .unconditional, help: "Port to listen on, 0 to 65535 (0: any free port, printed at start). (default: 8080)",
                transform: OptionValue.int(0...65535))
        var port = 8080

        @Flag(help: "Listen on an address other than loopback without an administrator credential: anyone who reaches it may pause, resume, replay and purge.")
        var allowOpenAdmin = false

        func run() async throws {
            let logger = Logs.logger("relocator.api")
            let service = try makeService(runtime, database, access: .readWrite, requireDatabase: false, logger: logger)
            defer { service.close() }
            // Level directories, when given, must be sound, as for a worker — those that answer: a
            // disk that does not holds up neither the start nor a request (`App.disks`).
            if let directories = service.directories {
                let silent = try verifyAnsweringLevelLayout(directories, setting: "RELOCATOR_LEVELS", within: service.disks.patience)
                for (level, why) in silent.sorted(by: { $0.key < $1.key }) {
                    logger.warning("level '\(level)': \(why); it is not checked, and requests do not wait for it")
                }
            }
            let environment = ProcessInfo.processInfo.environment
            // A credential of spaces only is none a client can send (HTTP trims them): refused.
            for name in ["RELOCATOR_SUBMIT_TOKEN", "RELOCATOR_ADMIN_TOKEN", "RELOCATOR_READ_TOKEN", "RELOCATOR_API_TOKEN"] {
                if let value = environment[name], !value.isEmpty, value.allSatisfy(\.isWhitespace) {
                    throw CommandFailure("\(name) holds only spaces: no client can send it; unset it or give a token")
                }
            }
            let credentials = APICredentials(submit: environment["RELOCATOR_SUBMIT_TOKEN"], admin: environment["RELOCATOR_ADMIN_TOKEN"],
                                             read: environment["RELOCATOR_READ_TOKEN"], legacy: environment["RELOCATOR_API_TOKEN"])
            if credentials.admin == nil, !allowOpenAdmin, !Self.isLoopback(host) {
                throw CommandFailure("serve on \(host) without RELOCATOR_ADMIN_TOKEN would let anyone who reaches it pause, resume, "
                                     + "replay and purge: set RELOCATOR_ADMIN_TOKEN, or pass --allow-open-admin to say so")
            }
            // (Port 0 too: the address itself may be one this host cannot listen on.)
            let (host, port) = (self.host, self.port)
            try await BlockingExecutor.shared.run { try ListenProbe.check(host: host, port: port) }
            await StartupCheck.log(redis: try runtime.redis(), database: database, logger: logger)
            do {
                try await service.agreeOnHalfLife()
            } catch let error as HalfLifeChange {
                throw error
            } catch {
                // Redis unreachable (StartupCheck said so): the committer checks once it answers.
                logger.debug("cannot check the half-life the counts are kept with yet", metadata: ["error": "\(error)"])
            }
            let app = buildApplication(
                service: service, configuration: APIConfiguration(host: host, port: port, credentials: credentials), logger: logger,
                onServerRunning: { [host] port in
                    // One line on stdout that scripts can wait for.
                    print("listening on http://\(host):\(port)")
                    fflush(nil)
                })
            try await app.runService()
        }

        /// True for an address only this machine reaches: `localhost`, `127.0.0.0/8`, `::1`.
        static func isLoopback(_ host: String) -> Bool {
            let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            if bare == "localhost" || bare == "::1" { return true }
            let parts = bare.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
        }
    }
}

/// The pools and the service the API and the operator commands share. `access` is what the
/// command does to the database (`.readOnly` for `status`). A one-shot command (`requireDatabase`)
/// without `DATABASE_URL` and without `relocator.sqlite` here fails at once, saying how to make one.
func makeService(_ runtime: RuntimeOptions, _ database: DatabaseOptions, access: Composition.DatabaseAccess, requireDatabase: Bool = true,
                 logger: Logger) throws -> App {
    let (url, setting) = try database.resolved()
    if requireDatabase, setting == nil, case .sqlite(let path) = url, !FileManager.default.fileExists(atPath: path) {
        throw DatabaseOptions.noDatabase
    }
    // The level directories are optional here: an API on a machine without the disks skips the symlink check.
    let directories = try runtime.environment["RELOCATOR_LEVELS"].flatMap { $0.isEmpty ? nil : try LevelDirectories(parsing: $0) }
    return Composition.app(try runtime.servers(database: url), access: access, jobTTL: try runtime.jobTTL(),
                           directories: directories, halfLife: try runtime.halfLife(), logger: logger)
}

/// What a long-running command says at start about the servers it needs: Redis unreachable, a
/// database that cannot be opened or is not migrated ("run `relocator migrate`"). It logs and goes
/// on: the services wait for Redis, and the API answers not ready meanwhile.
enum StartupCheck {
    static func log(redis url: RedisURL?, database: DatabaseOptions?, logger: Logger) async {
        let problems: [String]
        do {
            problems = try await BlockingExecutor.shared.run { problemsNow(redis: url, database: database) }
        } catch {
            logger.warning("cannot check Redis and the database at start: \(FailureReport.line(error))")
            return
        }
        for problem in problems { logger.warning("\(problem)") }
    }

    /// One line per thing missing (blocking).
    static func problemsNow(redis url: RedisURL?, database: DatabaseOptions?) -> [String] {
        var resolved: (url: DatabaseURL, setting: String?)?
        var problems: [String] = []
        if let database {
            do {
                resolved = try database.resolved()
            } catch {
                problems.append("the database is not ready: \(FailureReport.line(error))")
            }
        }
        // Without DATABASE_URL, a missing relocator.sqlite here is explained with how to make one.
        let missing: (any Error)? = resolved?.setting == nil ? DatabaseOptions.noDatabase : nil
        return Composition.startupProblems(redis: url, database: resolved?.url, missingFile: missing, describe: FailureReport.line) + problems
    }
}
