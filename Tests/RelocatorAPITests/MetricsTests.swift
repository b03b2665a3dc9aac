import CoreMetrics
import Foundation
import Hummingbird
import HummingbirdTesting
import JobQueue
import Logging
import RelocatorCore
import RelocatorMetrics
import Testing
import TestSupport
@testable import RelocatorAPI

/// Prometheus: a real scrape of the API passes `promtool check metrics`, carries the queue's
/// gauges, and the workers' small metrics server answers too.
@Suite(.serialized) struct MetricsTests {
    /// `promtool check metrics` on `text`: nil when it passes, else what it said.
    static func promtool(_ text: String) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return process.terminationStatus == 0 ? nil : said
    }

    @Test func aScrapeOfTheAPIPassesPromtoolAndCarriesTheQueueGauges() async throws {
        let metrics = APIFixture.metrics
        // What a worker and a committer in this process would record.
        Counter(label: "relocator_moves_total", dimensions: [("from", "bronze"), ("to", "silver"), ("outcome", "moved")]).increment()
        Counter(label: "relocator_moved_bytes_total", dimensions: [("from", "bronze"), ("to", "silver")]).increment(by: 1024)
        Timer(label: "relocator_move_duration_seconds", dimensions: [("method", "copy")]).recordSeconds(42)
        Counter(label: "relocator_commits_total").increment(by: 3)
        Timer(label: "relocator_commit_batch_seconds").recordMilliseconds(12)

        let api = try APIFixture()
        defer { api.tearDown() }
        try api.addContents([(1, "a.mp4", "bronze", 10)])
        try api.queue.heartbeat(worker: "w1", info: [.kind: "worker", .levels: "bronze,silver,gold", .disks: "gold=100,900,1000;silver=5,5,10"],
                                ttl: .seconds(600), on: api.redis)
        try api.queue.pause(level: "silver", on: api.redis)
        try await api.test(metrics: metrics) { client in
            #expect(try await client.postForm("/post_sentence", "cid=1&count=5000").status == .ok)
            let scrape = try await client.get("/metrics")
            #expect(scrape.status == .ok && scrape.headers[.contentType] == PrometheusMetrics.contentType)
            let text = scrape.text
            if let problem = try Self.promtool(text) { Issue.record("promtool: \(problem)\n\(text)") }
            for line in [#"relocator_queue_depth{level="silver"} 1"#, #"relocator_level_paused{level="silver"} 1"#,
                         #"relocator_level_bytes{level="gold",kind="free"} 900"#, "relocator_workers_alive 1", "relocator_dead_jobs 0",
                         "relocator_processing_jobs 0", "relocator_retry_jobs 0", #"relocator_queue_oldest_age_seconds{level="silver"}"#,
                         #"relocator_moves_total{from="bronze",to="silver",outcome="moved"}"#, "relocator_commits_total",
                         #"relocator_move_duration_seconds_bucket{method="copy",le="60.0"}"#, "relocator_commit_batch_seconds_bucket",
                         #"relocator_http_requests_total{route="/post_sentence",method="POST",status="200"}"#,
                         "relocator_http_request_duration_seconds_bucket"] {
                #expect(text.contains(line), "missing \(line)")
            }
        }
    }

    @Test func theQueueIsReadAtMostOnceASecondHoweverOftenPrometheusScrapes() async throws {
        let api = try APIFixture()
        defer { api.tearDown() }
        let first = try await api.service.stats(maxAge: .seconds(60))
        try api.queue.pause(level: "gold", on: api.redis)
        // Within the age, the cached reading: gold is not yet seen paused.
        #expect(try await api.service.stats(maxAge: .seconds(60)) == first)
        #expect(try await api.service.stats().levels.first { $0.name == "gold" }?.paused == true)
    }

    @Test func theMetricsServerOfWorkersAndCommittersAnswersAScrape() async throws {
        let metrics = APIFixture.metrics
        Counter(label: "relocator_moves_total", dimensions: [("from", "gold"), ("to", "bronze"), ("outcome", "retried")]).increment()
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let server = MetricsServer(port: 0, metrics: metrics, logger: Logger(label: "test.metrics")) { port in continuation.yield(port) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            var ports = stream.makeAsyncIterator()
            let port = try #require(await ports.next())
            let scrape = try await BlockingExecutor.shared.run { try HTTP.get(port, "/metrics") }
            #expect(scrape.status == 200 && scrape.body.contains(#"relocator_moves_total{from="gold",to="bronze",outcome="retried"}"#))
            if let problem = try Self.promtool(scrape.body) { Issue.record("promtool: \(problem)") }
            group.cancelAll()
        }
    }

    @Test func unknownSwiftMetricsNamesAreSanitizedWithHelp() throws {
        let registry = PrometheusMetrics()
        let factory = registry.factory
        factory.makeCounter(label: "some.library.events", dimensions: [("http.route", "/x")]).increment(by: 2)
        factory.makeMeter(label: "http.server.active_requests", dimensions: [("http.request.method", "GET")]).set(Int64(1))
        let text = String(decoding: registry.scrape(), as: UTF8.self)
        #expect(text.contains(#"some_library_events_total{route="/x"} 2"#))
        #expect(text.contains(#"relocator_http_active_requests{method="GET"} 1"#))
        #expect(try Self.promtool(text) == nil)
    }
}
