import Foundation
import Hummingbird
import HummingbirdTesting
import JobQueue
import Logging
import RedisClient
import RelocatorApp
import RelocatorCore
import RelocatorMetrics
import SQLStore
import RouterTestSupport
import Testing
import TestSupport
@testable import RelocatorAPI

/// One test's API over real Redis (a key prefix of its own) and an SQLite file of its own,
/// migrated and seeded with the default levels, with a directory per level: for what a real
/// server does under the routes (RelocatorAPITests prove the routes over the memory queue and store).
final class APIFixture: @unchecked Sendable {
    let directory: TemporaryDirectory
    let databaseURL: DatabaseURL
    let queue: JobQueue
    let redis: RedisConnection
    let service: App
    let directories: LevelDirectories
    var configuration = APIConfiguration()
    /// False for a fixture on a Redis that does not answer: nothing to clean there.
    let redisReachable: Bool

    init(migrate: Bool = true, levels: [LevelRange] = LevelRange.defaults, redisURL: RedisURL? = nil, halfLife: Duration? = nil,
         contents: ContentCache = ContentCache(maxAge: .zero), replication: RedisReplication? = nil,
         clock: @escaping @Sendable () -> Int64 = JobQueue.nowMilliseconds) throws {
        let directory = try TemporaryDirectory("relocator-api")
        self.directory = directory
        // A setup step that throws leaves nothing behind either.
        var ready = false
        defer { if !ready { directory.remove() } }
        databaseURL = .sqlite(path: directory.path + "/relocator.sqlite")
        var pairs: [(String, String)] = []
        for level in ["bronze", "silver", "gold"] {
            try FileManager.default.createDirectory(atPath: directory.path + "/" + level, withIntermediateDirectories: true)
            pairs.append((level, directory.path + "/" + level))
        }
        directories = LevelDirectories(pairs)
        let url = try redisURL ?? TestEnvironment.redisURL()
        redisReachable = redisURL == nil
        queue = JobQueue(keys: try KeySchema(prefix: "{\(TestEnvironment.uniqueName("api"))}", shards: 1))
        redis = RedisConnection(url: url)
        let db = try openDatabase(databaseURL, access: .create)
        defer { db.close() }
        if migrate {
            try Migrator(database: db, migrations: Migration.embedded(dialect: db.dialect)).migrate()
            if !levels.isEmpty { try LevelStore(database: db).seed(levels) }
        }
        service = App(queue: RedisQueueGateway(queue: queue, pool: RedisPool(url: url, size: 2, replication: replication)),
                      store: SQLStoreGateway(url: databaseURL, size: 2), levels: LevelCache(maxAge: .zero), contents: contents,
                      directories: directories, halfLife: halfLife, logger: Logger(label: "test.api"), clock: clock)
        ready = true
    }

    func tearDown() {
        service.close()
        var names: [String] = []
        for pattern in redisReachable ? Set(queue.keys.shards.map(\.prefix) + [queue.keys.control.prefix]) : [] {
            do { names += try redis.scan(match: pattern + "*") } catch { Issue.record("cannot list the test's keys: \(error)") }
        }
        for name in names {
            do { try redis.send("DEL", name) } catch { Issue.record("cannot remove \(name): \(error)") }
        }
        redis.close()
        directory.remove()
    }

    /// Adds contents and writes each file (`bytes` of them) on its level, when `bytes` is given.
    func addContents(_ rows: [(cid: Int64, filename: String, level: String, bytes: Int?)]) throws {
        let db = try openDatabase(databaseURL, access: .readWrite)
        defer { db.close() }
        for row in rows {
            try ContentStore(database: db).put(Content(cid: row.cid, filename: row.filename, level: row.level))
            if let bytes = row.bytes {
                let path = directories.directory(of: row.level)! + "/" + row.filename
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(repeating: 7, count: bytes).write(to: URL(fileURLWithPath: path))
            }
        }
    }

    func path(_ level: String, _ filename: String) -> String { directories.directory(of: level)! + "/" + filename }

    /// Runs `body` against the router, without a socket.
    func test(metrics: PrometheusMetrics? = nil, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let router = buildRouter(service: service, configuration: configuration, logger: Logger(label: "test.api"), metrics: metrics)
        try await Application(router: router).test(.router, body)
    }

    /// Takes and claims the next job, as a worker slot does.
    func claim(worker: String = "w1", levels: [String] = ["gold", "silver", "bronze"]) throws -> Job? {
        while let taken = try queue.take(worker: worker, shard: 0, levels: levels, on: redis) {
            if case .claimed(let fields) = try queue.claim(taken, worker: worker, on: redis) { return try Job.decode(fields).get() }
        }
        return nil
    }

    /// A claimed job fails for good: it goes to `dead`.
    func kill(_ job: Job, worker: String = "w1", reason: String = "source_missing") throws {
        let outcome = try queue.fail(JobID(cid: job.cid, gen: job.gen), worker: worker, token: job.deliveryToken, reason: reason,
                                     message: "\(reason): bronze/\(job.filename) is on no level's disk", permanent: true,
                                     delay: .zero, maxAttempts: 5, on: redis)
        #expect(outcome == .dead)
    }
}
