import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import RedisClient
import RelocatorApp
import RelocatorCore
import RelocatorMetrics
import RelocatorTesting
import Synchronization
import RouterTestSupport
import Testing
@testable import RelocatorAPI

/// One test's API over the memory queue and the memory store: the HTTP layer and the use cases
/// without any server (the Redis and SQL tests prove the stores themselves).
final class MemoryAPI: Sendable {
    let queue = MemoryQueue()
    let store: MemoryStore
    /// The queue's gateway, with the faults a test injects.
    let gateway: FaultyQueueGateway
    let service: App
    let configuration: Mutex<APIConfiguration>
    /// The API's clock, ahead of the queue's by `skew` ms and moved with `advance`.
    private let offset: Offset

    /// The process's metrics (swift-metrics is bootstrapped once per process).
    static let metrics = PrometheusMetrics.bootstrap()

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
        gateway = FaultyQueueGateway(MemoryQueueGateway(queue))
        service = App(queue: gateway, store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero),
                      contents: ContentCache(maxAge: .seconds(3600)), directories: directories, halfLife: halfLife, logger: Logger(label: "test.memory-api"),
                      clock: { WallClock.milliseconds() + offset.value.withLock { $0 } })
    }

    /// Time, in the API's clock, as a worker's heartbeat or a report stamps it.
    var now: Int64 { WallClock.milliseconds() + offset.value.withLock { $0 } }

    func add(_ rows: [(cid: Int64, filename: String, level: String)]) throws {
        _ = try store.put(rows.map { Content(cid: $0.cid, filename: $0.filename, level: $0.level) })
    }

    /// Time passes for the API and the queue alike.
    func advance(_ duration: Duration) {
        offset.value.withLock { $0 += duration.milliseconds }
        queue.advance(duration)
    }

    /// The API's clock alone moves (a clock stepped, or another host's).
    func shiftClock(by milliseconds: Int64) {
        offset.value.withLock { $0 += milliseconds }
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

    /// A worker's or committer's heartbeat, alive for six hours (a loaded machine has taken over ten
    /// minutes over one test).
    func beat(_ heartbeat: Heartbeat) throws {
        _ = try queue.maintain(MaintenanceRequest(beat: heartbeat, ttl: .seconds(6 * 3600)))
    }

    /// A claimed job fails for good: it goes to `dead`.
    func kill(_ delivery: Delivery, reason: FailureReason = .sourceMissing) throws {
        let outcome = try queue.complete(delivery, .failed(reason, message: "\(reason.rawValue): bronze/\(delivery.job.filename) is on no level's disk",
                                                          permanent: true, delay: .zero, maxAttempts: 5))
        #expect(outcome == .dead)
    }
}

/// The memory queue's gateway with the faults a test injects: writes refused with a server's error
/// (as a Redis at its `maxmemory` refuses them) while reads go on, and what readiness then says.
/// The server's own behaviour is proved against a real Redis; here, what the HTTP layer makes of it.
final class FaultyQueueGateway: QueueGateway {
    let inner: MemoryQueueGateway
    private let refusal = Mutex<(error: RedisError, problem: String)?>(nil)

    init(_ inner: MemoryQueueGateway) {
        self.inner = inner
    }

    /// While set, every write (a submission, a replicated session) throws `error` before it reaches
    /// the queue, and the queue's problem is `problem`; nil lifts it.
    func refuseWrites(_ error: RedisError?, problem: String = "") {
        refusal.withLock { $0 = error.map { ($0, problem) } }
    }

    private func refused() throws {
        if let refusal = refusal.withLock({ $0 }) { throw refusal.error }
    }

    func withSession<T: Sendable>(replicated: Bool, _ body: @escaping @Sendable (any JobQueueSession) throws -> T) async throws -> T {
        if replicated { try refused() }
        return try await inner.withSession(replicated: replicated, body)
    }

    func submit(_ request: SubmitRequest) async throws -> SubmitResult {
        try refused()
        return try await inner.submit(request)
    }

    func identity() async -> String? { await inner.identity() }

    func problem() async -> String? {
        if let refusal = refusal.withLock({ $0 }) { return refusal.problem }
        return await inner.problem()
    }

    var address: String { inner.address }
    var shardCount: Int { inner.shardCount }
    func close() { inner.close() }
}
