import JobQueue
import Logging
import RedisClient
import RelocatorApp
import RelocatorCore
import SQLStore

/// The composition root: the one place where the executable's commands get their parts over Redis
/// and SQL. A command parses its options into `Composition.Servers` and asks for what it runs (the
/// application, a worker's queue, the committer, the rebalancer, the start-up check, a migration);
/// it never opens a connection or runs a statement itself.
public enum Composition {
    /// What a command does to the database (`.readOnly` never creates or writes anything).
    public typealias DatabaseAccess = SQLStore.DatabaseAccess

    /// Where the servers are, as the command's options and environment say.
    public struct Servers: Sendable {
        public var redis: RedisURL
        /// Replicas that must hold a write before it is acknowledged, and how long to wait for them.
        public var replicas: (count: Int, timeout: Duration)?
        public var keys: KeySchema
        public var database: DatabaseURL

        public init(redis: RedisURL, replicas: (count: Int, timeout: Duration)? = nil, keys: KeySchema, database: DatabaseURL) {
            self.redis = redis
            self.replicas = replicas
            self.keys = keys
            self.database = database
        }

        var replication: RedisReplication? { replicas.map { RedisReplication(replicas: $0.count, timeout: $0.timeout) } }
    }

    /// The one line a command prints for a server it could not reach, naming the server and never
    /// an internal command (`redis 127.0.0.1:6379: cannot connect: Connection refused`); nil for
    /// any other error.
    public static func unreachableServerLine(_ error: any Error) -> String? {
        guard let redis = error as? RedisError, [.connection, .timeout, .authentication, .closed].contains(redis.code) else { return nil }
        return "redis \(redis.address): \(redis.message)"
    }

    /// The application over the Redis queue (a pool, and a pipeliner through which concurrent
    /// submissions share round trips) and the SQL store (a pool). Connections open on first use.
    public static func app(_ servers: Servers, access: DatabaseAccess, redisConnections: Int = 8, databaseConnections: Int = 4,
                           jobTTL: Duration, directories: LevelDirectories?, halfLife: Duration?, logger: Logger) -> App {
        let pool = RedisPool(url: servers.redis, size: redisConnections, replication: servers.replication)
        return App(queue: RedisQueueGateway(queue: JobQueue(keys: servers.keys), pool: pool),
                   store: SQLStoreGateway(url: servers.database, size: databaseConnections, access: access),
                   jobTTL: jobTTL, directories: directories, halfLife: halfLife, logger: logger)
    }

    /// The queue as a worker's, the committer's or the rebalancer's thread sees it: one connection
    /// of its own, reopened after an outage.
    public static func queueDriver(keys: KeySchema, redis: RedisURL) -> any JobQueueDriver {
        RedisJobQueueDriver(queue: JobQueue(keys: keys), url: redis)
    }

    /// The queue for async callers other than the application (a worker's transfer endpoint).
    public static func queueGateway(keys: KeySchema, redis: RedisURL, connections: Int) -> any QueueGateway {
        RedisQueueGateway(queue: JobQueue(keys: keys), pool: RedisPool(url: redis, size: connections))
    }

    /// The committer over the Redis queue and the SQL database (opened, and reopened after an
    /// outage, by the committer's thread).
    public static func committer(_ servers: Servers, settings: Committer.Settings, logger: Logger) -> Committer {
        let url = servers.database
        return Committer(settings: settings, driver: queueDriver(keys: servers.keys, redis: servers.redis),
                         openDatabase: { try openDatabase(url, access: .readWrite) }, logger: logger)
    }

    /// The rebalancer over the Redis queue and the SQL database.
    public static func rebalancer(_ servers: Servers, settings: Rebalancer.Settings, logger: Logger) -> Rebalancer {
        let url = servers.database
        return Rebalancer(settings: settings, driver: queueDriver(keys: servers.keys, redis: servers.redis),
                          openDatabase: { try openDatabase(url, access: .readWrite) }, logger: logger)
    }

    /// `relocator migrate`: applies what the database has not seen (from `directory`, else the
    /// migrations compiled into the binary) and says where it stands.
    public static func migrate(_ url: DatabaseURL, directory: String?) throws -> (location: String, applied: [String], summary: String) {
        let run = try Migrator.migrate(url, directory: directory)
        return (run.location, run.applied, run.status.summary)
    }

    /// What a long-running command says at start about the servers it needs, one line per thing
    /// missing: Redis unreachable, a database that cannot be opened or is not migrated. `describe`
    /// words an error as the command's messages do; `missingFile`, when given, stands for the
    /// error of a SQLite file that is not there (the command explains how to make one). Blocking.
    public static func startupProblems(redis: RedisURL?, database: DatabaseURL?, missingFile: (any Error)? = nil,
                                       describe: (any Error) -> String) -> [String] {
        var problems: [String] = []
        if let redis {
            let connection = RedisConnection(url: redis)
            defer { connection.close() }
            do {
                _ = try connection.send("PING")
            } catch {
                problems.append("Redis is unreachable (waiting for it): \(describe(error))")
            }
        }
        if let database {
            do {
                let db: any SQLDatabase
                do {
                    db = try openDatabase(database, access: .readOnly)
                } catch let error as SQLError where error.code == .databaseFileMissing && missingFile != nil {
                    throw missingFile!
                }
                defer { db.close() }
                let status = try Migrator(database: db, migrations: Migration.embedded(dialect: db.dialect)).status()
                if !status.isCurrent { problems.append("the database \(db.location) is not ready: \(status.summary)") }
            } catch {
                problems.append("the database is not ready: \(describe(error))")
            }
        }
        return problems
    }
}
