import Hummingbird
import HummingbirdTesting
import Logging
import RelocatorApp
import RelocatorCore
import RelocatorMetrics
import RelocatorTesting
import Synchronization
import Testing
@testable import RelocatorAPI

/// One test's API over the memory queue and the memory store: the HTTP layer and the use cases
/// without any server (the Redis and SQL tests prove the stores themselves).
final class MemoryAPI: Sendable {
    let queue = MemoryQueue()
    let store: MemoryStore
    let service: App
    let configuration: Mutex<APIConfiguration>
    /// The API's clock, ahead of the queue's by `skew` ms and moved with `advance`.
    private let offset: Offset

    final class Offset: Sendable {
        let value: Mutex<Int64>
        init(_ value: Int64) { self.value = Mutex(value) }
    }

    init(levels: [LevelRange] = LevelRange.defaults, halfLife: Duration? = nil, skew: Int64 = 0,
         configuration: APIConfiguration = APIConfiguration(), directories: LevelDirectories? = nil) {
        store = MemoryStore(levels: levels)
        let offset = Offset(skew)
        self.offset = offset
        self.configuration = Mutex(configuration)
        service = App(queue: MemoryQueueGateway(queue), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero),
                      contents: ContentCache(maxAge: .seconds(3600)), directories: directories, halfLife: halfLife, logger: Logger(label: "test.memory-api"),
                      clock: { WallClock.milliseconds() + offset.value.withLock { $0 } })
    }

    func add(_ rows: [(cid: Int64, filename: String, level: String)]) throws {
        _ = try store.put(rows.map { Content(cid: $0.cid, filename: $0.filename, level: $0.level) })
    }

    /// Time passes for the API and the queue alike.
    func advance(_ duration: Duration) {
        offset.value.withLock { $0 += duration.milliseconds }
        queue.advance(duration)
    }

    func test(metrics: PrometheusMetrics? = nil, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let router = buildRouter(service: service, configuration: configuration.withLock { $0 }, logger: Logger(label: "test.memory-api"),
                                 metrics: metrics)
        try await Application(router: router).test(.router, body)
    }

    /// The next job of any level, taken and claimed as a worker slot does.
    func claim(worker: String = "w1", levels: [String] = ["gold", "silver", "bronze"]) throws -> Delivery? {
        guard case .delivery(let delivery) = try queue.next(NextRequest(worker: worker, levels: levels, rotation: 0, wait: .zero))
        else { return nil }
        return delivery
    }

    /// A worker's or committer's heartbeat, alive for ten minutes.
    func beat(_ heartbeat: Heartbeat) throws {
        _ = try queue.maintain(MaintenanceRequest(beat: heartbeat, ttl: .seconds(600)))
    }

    /// A claimed job fails for good: it goes to `dead`.
    func kill(_ delivery: Delivery, reason: FailureReason = .sourceMissing) throws {
        let outcome = try queue.complete(delivery, .failed(reason, message: "\(reason.rawValue): bronze/\(delivery.job.filename) is on no level's disk",
                                                          permanent: true, delay: .zero, maxAttempts: 5))
        #expect(outcome == .dead)
    }
}
