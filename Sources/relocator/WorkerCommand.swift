import ArgumentParser
import FileMover
import Logging
import Foundation
import RelocatorCore
import RelocatorFaults
import RelocatorMetrics
import RelocatorServices
import RelocatorTransfer
import ServiceLifecycle

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

        @Option(help: "host:port on which to serve this host's level files to the workers of other hosts (port 0: any free port). Levels whose directory this host lacks are then left to the hosts that have them. (default: none: every level's directory must be on this host)")
        var transferListen: String?

        @Option(help: "host:port at which other hosts reach --transfer-listen (default: --transfer-listen, unless it listens on 0.0.0.0 or ::).")
        var transferAdvertise: String?

        @Option(help: "A file holding a secret (at least 16 bytes) every host's workers share: each transfer request is signed with it, and one without its signature is refused. (default: none: the delivery's own secret only)")
        var transferSecretFile: String?

        @Option(help: "A PEM certificate (its chain after it) for --transfer-listen, with --transfer-tls-key: the endpoint then speaks TLS only, and its heartbeat says so. Its names must include the --transfer-advertise host (an IP address or a DNS name). (default: none: plain HTTP)")
        var transferTlsCert: String?

        @Option(help: "The PEM private key of --transfer-tls-cert. (default: none; given with --transfer-tls-cert)")
        var transferTlsKey: String?

        @OptionGroup var transferTrust: TransferTrustOptions

        func validate() throws {
            if let id, id.isEmpty || id.contains(where: { $0.isWhitespace }) || id.count > 128 {
                throw ValidationError("--id must be 1 to 128 characters without spaces")
            }
        }

        /// `--transfer-listen` and the address advertised for it; nil without `--transfer-listen`.
        /// Checked as the command runs: a bad address is one line naming it.
        func transferAddresses() throws -> (listen: TransferAddress, advertise: TransferAddress)? {
            guard let transferListen else {
                if transferAdvertise != nil { throw ValidationError("--transfer-advertise needs --transfer-listen") }
                return nil
            }
            let listen: TransferAddress
            do {
                listen = try TransferAddress(parsing: transferListen, allowsAnyPort: true)
            } catch {
                throw ValidationError("--transfer-listen: \(error)")
            }
            guard let transferAdvertise else {
                if listen.isWildcard {
                    throw ValidationError("--transfer-listen \(listen) is no address other hosts can reach: give --transfer-advertise")
                }
                return (listen, listen)
            }
            do {
                // (Port 0 is no port another host can reach: the advertised port is a real one.)
                return (listen, try TransferAddress(parsing: transferAdvertise))
            } catch {
                throw ValidationError("--transfer-advertise: \(error)")
            }
        }

        /// `--transfer-secret-file`'s key (nil without it); a file that cannot be read or holds too
        /// little is refused, naming the file and never its content.
        func transferSigningKey() throws -> TransferSigningKey? {
            guard let transferSecretFile else { return nil }
            guard transferListen != nil else { throw ValidationError("--transfer-secret-file needs --transfer-listen") }
            return try readTransferSigningKey(transferSecretFile)
        }

        /// The endpoint's certificate and key (nil without them), and the CAs of the pulls' peers;
        /// checked as the command runs: a missing half, or a file that cannot be read or parsed, is
        /// one line naming it.
        func transferTLS() throws -> (server: TransferServerTLS?, trust: TransferTLSTrust?) {
            let trust = try transferTrust.trust()
            guard transferTlsCert != nil || transferTlsKey != nil || trust != nil else { return (nil, nil) }
            guard transferListen != nil else {
                let given = transferTlsCert != nil ? "--transfer-tls-cert" : transferTlsKey != nil ? "--transfer-tls-key" : "--transfer-tls-ca"
                throw ValidationError("\(given) needs --transfer-listen")
            }
            switch (transferTlsCert, transferTlsKey) {
            case (nil, nil): return (nil, trust)
            case (_?, nil): throw ValidationError("--transfer-tls-cert needs --transfer-tls-key (the certificate's private key)")
            case (nil, _?): throw ValidationError("--transfer-tls-key needs --transfer-tls-cert (the certificate it is the key of)")
            case (let cert?, let key?):
                do {
                    return (try TransferServerTLS(certificateFile: cert, keyFile: key), trust)
                } catch {
                    throw CommandFailure("\(error)")
                }
            }
        }

        func run() async throws {
            let transfer = try transferAddresses()
            if let listen = transfer?.listen {
                // At once, in one line (the server's own failure to bind would come later, inside
                // the running worker).
                do {
                    try await BlockingExecutor.shared.run { try ListenProbe.check(host: listen.host, port: listen.port) }
                } catch {
                    throw CommandFailure("--transfer-listen \(listen): \(error)")
                }
            }
            let signingKey = try transferSigningKey()
            let tls = try transferTLS()
            var (directories, setting) = try runtime.levelDirectories(flag: levelDirs)
            var remoteLevels: Set<String> = []
            let logger = Logs.logger("relocator.worker")
            let heartbeatTTL = try runtime.heartbeatTTL()
            // A level whose directory does not answer (a stalled disk, a network filesystem whose
            // server is gone) holds up only itself: the worker starts with it out of service, and
            // checks and opens it once it answers (LevelPreparation.openLate).
            let silent = levelsNotAnswering(directories, within: Worker.levelPatience(heartbeatTTL: heartbeatTTL))
            if transfer != nil {
                // Each host lists the directories it has; the others' files come through their workers.
                let found = levelsOnThisHost(directories.filter { silent[$0] == nil })
                guard !found.present.names.isEmpty || !silent.isEmpty else {
                    throw CommandFailure("\(setting): no level directory is on this host (\(directories.names.map { "\($0)=\(directories.directory(of: $0)!)" }.joined(separator: ", ")))")
                }
                for level in found.absent {
                    logger.notice("level '\(level)' (\(directories.directory(of: level)!)) is not on this host: its files are reached through the workers of the hosts that have it")
                }
                directories = directories.filter { !found.absent.contains($0) }
                remoteLevels = Set(found.absent)
            }
            let resolved = try verifyLevelLayout(directories.filter { silent[$0] == nil }, setting: setting)
            let served = try Self.servedLevels(levels, directories: directories, setting: setting)
            let faults = try WorkerFaults(parsing: runtime.environment["RELOCATOR_FAULTS"])
            if faults.isActive { logger.critical("RELOCATOR_FAULTS is set: this worker injects faults (for tests only)") }
            var settings = Worker.Settings(
                id: id ?? "\(ProcessInfo.processInfo.hostName):\(getpid())", levels: served, directories: directories,
                concurrency: concurrency, retry: try runtime.retryPolicy(), heartbeatTTL: heartbeatTTL,
                gracePeriod: .seconds(gracePeriod))
            settings.deferRetry = try runtime.deferRetry()
            settings.transfer = transfer?.advertise
            settings.remoteLevels = remoteLevels
            settings.checksum = try runtime.checksumAlgorithm()
            settings.transferSigningKey = signingKey
            settings.transferServesTLS = tls.server != nil
            settings.transferTrust = tls.trust
            // The level directories checked above stay open for the worker's life: a level whose path
            // later names another directory (unmounted, remounted) is taken out of service.
            let held = try HeldLevels(directories, resolved: resolved, unopened: silent)
            // With RELOCATOR_FAULTS, the queue and the mover are wrapped; the worker knows nothing of it.
            let redisDriver = Composition.queueDriver(keys: try runtime.keys(), redis: try runtime.redis())
            let driver: any JobQueueDriver = faults.isActive ? FaultyQueueDriver(redisDriver, faults: faults, logger: logger) : redisDriver
            let mover: any FileMoving = faults.noopMove ? NoopMover()
                : FileMover(algorithm: try runtime.checksumAlgorithm(), faults: faults.move, levels: held)
            let worker = Worker(settings: settings, driver: driver, mover: mover, levels: held, logger: logger)
            var services: [any Service] = [worker] + (try await metrics.services(logger: logger) { worker.metricsServed(on: $0) })
            if let transfer {
                let queue = Composition.queueGateway(keys: try runtime.keys(), redis: try runtime.redis(), connections: 4)
                let endpoint = TransferEndpoint(levels: held, queue: queue, logger: Logs.logger("relocator.transfer"), signingKey: signingKey)
                services.append(TransferServer(endpoint: endpoint, listen: transfer.listen, tls: tls.server) { worker.transferServed(on: $0) })
            }
            try await runServices(services, logger: logger)
        }

        /// `--levels`, each of which must have a directory in `directories` (from `setting`).
        static func servedLevels(_ text: String?, directories: LevelDirectories, setting: String) throws -> [String] {
            guard let text else { return directories.names }
            let served = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !served.isEmpty else { throw CommandFailure("--levels names no level") }
            if let twice = served.first(where: { level in served.filter { $0 == level }.count > 1 }) {
                throw CommandFailure("--levels names '\(twice)' twice")
            }
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
            // Every setting is read before the servers are looked at: a bad one is the one line said.
            let name = id ?? "committer-\(ProcessInfo.processInfo.hostName):\(getpid())"
            let halfLife = try runtime.halfLife()
            var settings = Committer.Settings(id: name, batch: batch, jobTTL: try runtime.jobTTL(), heartbeatTTL: try runtime.heartbeatTTL())
            let servers = try runtime.servers(database: try database.resolve(), replicated: false)
            await StartupCheck.log(redis: nil, database: database, logger: logger)
            settings.halfLife = halfLife
            let committer = Composition.committer(servers, settings: settings, logger: logger)
            var services: [any Service] = [committer]
            if rebalanceInterval != "off" {
                // Placement (watermarks, displacement, decay) runs here: the committer already holds the
                // database and Redis, and the rebalancer's lock lets several committers run it safely.
                var rebalancing = Rebalancer.Settings(id: name, halfLife: halfLife)
                rebalancing.interval = .seconds(try OperatorValues.durationSeconds(rebalanceInterval))
                services.append(Composition.rebalancer(servers, settings: rebalancing, logger: Logs.logger("relocator.rebalancer")))
            }
            services += try await metrics.services(logger: logger) { committer.metricsServed(on: $0) }
            try await runServices(services, logger: logger)
        }
    }
}

/// Runs a long-lived command's services until SIGTERM or SIGINT. One that fails (a server whose
/// port was taken between its probe and its bind) shuts the others down gracefully — a worker
/// finishes its moves in flight and gives back what it holds — and its error ends the command:
/// one line and a non-zero exit, never a process left running without it and deaf to signals.
func runServices(_ services: [any Service], logger: Logger) async throws {
    let configurations = services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0, failureTerminationBehavior: .gracefullyShutdownGroup) }
    let group = ServiceGroup(configuration: .init(services: configurations, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
}
