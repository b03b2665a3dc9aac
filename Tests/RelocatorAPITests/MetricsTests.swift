import CoreMetrics
import Foundation
import Hummingbird
import HummingbirdTesting
import JobQueue
import Logging
import RedisClient
import RelocatorCore
import RelocatorServices
import ServiceLifecycle
import Testing
import TestSupport
@testable import RelocatorAPI
@testable import RelocatorMetrics

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

    /// The metric names a scrape declares (`# HELP <name> …`).
    static func names(_ text: String) -> Set<String> {
        Set(text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("# HELP ") else { return nil }
            return line.dropFirst("# HELP ".count).split(separator: " ").first.map(String.init)
        })
    }

    static var metricsDocument: String {
        get throws { try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("docs/METRICS.md"), encoding: .utf8) }
    }

    @Test func aScrapeOfTheAPIPassesPromtoolAndCarriesTheQueueGauges() async throws {
        let metrics = MemoryAPI.metrics
        // What a worker and a committer in this process would record.
        Counter(label: "relocator_moves_total", dimensions: [("from", "bronze"), ("to", "silver"), ("outcome", "moved")]).increment()
        Counter(label: "relocator_moves_total", dimensions: [("from", "gold"), ("to", "bronze"), ("outcome", "retried"), ("reason", "no_space")]).increment()
        Counter(label: "relocator_moved_bytes_total", dimensions: [("from", "bronze"), ("to", "silver")]).increment(by: 1024)
        Timer(label: "relocator_move_duration_seconds", dimensions: [("method", "copied")]).recordSeconds(42)
        Counter(label: "relocator_commits_total").increment(by: 3)
        Timer(label: "relocator_commit_batch_seconds").recordMilliseconds(12)

        let api = MemoryAPI()
        try api.add([(1, "a.mp4", "bronze"), (2, "b.mp4", "bronze"), (3, "c.mp4", "bronze")])
        try api.beat(Heartbeat(id: "w1", kind: .worker, levels: ["bronze", "silver", "gold"],
                               disks: DiskReport(levels: ["gold": .init(used: 100, free: 900, size: 1000), "silver": .init(used: 5, free: 5, size: 10)])))
        try api.beat(Heartbeat(id: "c1", kind: .committer))
        _ = try api.queue.control(.pause(level: "silver"))
        try api.queue.publish(PlacementSnapshot(levels: LevelRange.defaults, policies: ["gold": LevelPolicy(highWater: 90, lowWater: 80)], halfLife: nil))
        try await api.test(metrics: metrics) { client in
            #expect(try await client.postForm("/post_sentence", "cid=1&count=5000").status == .ok)
            // cid 2 fails for good (dead, for gold); cid 3 is being moved into gold.
            #expect(try await client.postForm("/post_sentence", "cid=2&count=20000").status == .ok)
            try api.kill(try #require(try api.claim(levels: ["gold"])))
            #expect(try await client.postForm("/post_sentence", "cid=3&count=20000").status == .ok)
            _ = try #require(try api.claim(levels: ["gold"]))
            #expect(try await client.get("/no/such/route").status == .notFound)

            let scrape = try await client.get("/metrics")
            #expect(scrape.status == .ok && scrape.headers[.contentType] == PrometheusMetrics.contentType)
            let text = scrape.text
            if let problem = try Self.promtool(text) { Issue.record("promtool: \(problem)\n\(text)") }
            for line in [#"relocator_queue_depth{level="silver",shard="0"} 1"#, #"relocator_queue_depth{level="gold",shard="0"} 0"#,
                         #"relocator_level_paused{level="silver"} 1"#, #"relocator_queue_oldest_age_seconds{level="silver",shard="0"}"#,
                         #"relocator_dead_jobs{level="gold",shard="0"} 1"#, #"relocator_dead_jobs{level="silver",shard="0"} 0"#,
                         #"relocator_processing_jobs{level="gold",shard="0"} 1"#, #"relocator_retry_jobs{level="gold",shard="0"} 0"#,
                         #"relocator_deferred_jobs{level="bronze",shard="0"} 0"#, #"relocator_done_jobs{level="gold",shard="0"} 0"#,
                         #"relocator_committing_jobs{level="gold",shard="0"} 0"#,
                         #"relocator_level_used_bytes{level="gold"} 100"#, #"relocator_level_available_bytes{level="gold"} 900"#,
                         #"relocator_level_size_bytes{level="gold"} 1000"#,
                         #"relocator_level_high_watermark_ratio{level="gold"} 0.9"#, #"relocator_level_low_watermark_ratio{level="gold"} 0.8"#,
                         #"relocator_workers_alive{kind="worker"} 1"#, #"relocator_workers_alive{kind="committer"} 1"#,
                         #"relocator_level_workers{level="gold"} 1"#,
                         #"relocator_queue_moves_total{outcome="dead"} 1"#, "relocator_queue_commits_total 0",
                         "relocator_redis_up 1", "relocator_database_up 1", "relocator_queue_stats_up 1",
                         #"relocator_build_info{version="\#(RelocatorVersion.string)"} 1"#,
                         "process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ", "process_max_fds ",
                         "process_start_time_seconds ", "relocator_redis_commands_sent_total ",
                         #"relocator_moves_total{from="bronze",to="silver",outcome="moved"}"#,
                         #"relocator_moves_total{from="gold",to="bronze",outcome="retried",reason="no_space"}"#, "relocator_commits_total",
                         #"relocator_move_duration_seconds_bucket{method="copied",le="60.0"}"#, "relocator_commit_batch_seconds_bucket",
                         #"relocator_http_requests_total{route="/post_sentence",method="POST",status="200"}"#,
                         #"relocator_http_requests_total{route="unmatched",method="GET",status="404"} 1"#,
                         #"relocator_http_request_errors_total{route="unmatched",method="GET",class="4xx"} 1"#,
                         #"relocator_http_request_duration_seconds_bucket{route="/post_sentence""#] {
                #expect(text.contains(line), "missing \(line)")
            }
            // No metric mixes quantities under one name, no error counter for what did not fail (the
            // registry is the process's: other tests' refused requests may be counted, never a success),
            // no route per unknown path.
            for absent in ["relocator_level_bytes", #"route="NotFound""#, #"class="2xx""#, #"class="3xx""#,
                           "/no/such/route", "hb_", "http_server_"] {
                #expect(!text.contains(absent), "unexpected \(absent)")
            }
            // Every name is documented.
            let document = try Self.metricsDocument
            for name in Self.names(text) where !document.contains("`\(name)`") {
                Issue.record("docs/METRICS.md does not name \(name)")
            }
        }
    }

    @Test func everyMetricAWorkerOrACommitterRecordsIsDocumented() throws {
        let document = try Self.metricsDocument
        for name in MetricNames.known.keys.sorted() + ["relocator_build_info"] {
            #expect(document.contains("`\(name)`"), "docs/METRICS.md does not name \(name)")
        }
    }

    /// The rules of docs/alerts.yml are valid and fire (and stay quiet) as docs/alerts.test.yml
    /// expects; every metric they use is documented.
    @Test func theAlertingRulesPassPromtoolAndTheirUnitTests() throws {
        let docs = TestEnvironment.packageRoot.appendingPathComponent("docs")
        for arguments in [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]] {
            let result = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/promtool"), arguments, currentDirectory: docs)
            #expect(result.status == 0, "promtool \(arguments.joined(separator: " ")): \(result.stdout)\(result.stderr)")
        }
        let rules = try String(contentsOf: docs.appendingPathComponent("alerts.yml"), encoding: .utf8)
        let document = try Self.metricsDocument
        let used = Set(rules.matches(of: /\b(relocator_[a-z_]+)/).map { String($0.output.1) })
        #expect(used.count >= 8, "\(used)")
        for name in used.sorted() where !document.contains("`\(name)`") {
            Issue.record("docs/alerts.yml uses \(name), which docs/METRICS.md does not name")
        }
    }

    @Test func theQueueIsReadAtMostOnceASecondHoweverOftenPrometheusScrapes() async throws {
        let api = MemoryAPI()
        let first = try await api.service.stats(maxAge: .seconds(60))
        _ = try api.queue.control(.pause(level: "gold"))
        // Within the age, the cached reading: gold is not yet seen paused.
        #expect(try await api.service.stats(maxAge: .seconds(60)) == first)
        #expect(try await api.service.stats().levels.first { $0.name == "gold" }?.paused == true)
    }

    /// Runs a metrics server in a service group, hands its port to `body`, and stops it the way
    /// a worker does (graceful shutdown), so that it logs no cancellation.
    static func withMetricsServer(_ server: (@escaping @Sendable (Int) async -> Void) -> MetricsServer,
                                  _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let group = ServiceGroup(configuration: .init(services: [server { continuation.yield($0) }], logger: Self.quiet))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var ports = stream.makeAsyncIterator()
            do {
                try await body(try #require(await ports.next()))
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// A logger for servers the tests start: their start lines are not the test's output.
    static var quiet: Logger {
        var logger = Logger(label: "test.metrics")
        logger.logLevel = .warning
        return logger
    }

    @Test func theMetricsServerOfWorkersAndCommittersAnswersAScrape() async throws {
        let metrics = MemoryAPI.metrics
        Counter(label: "relocator_moves_total", dimensions: [("from", "gold"), ("to", "bronze"), ("outcome", "retried"), ("reason", "io_error")]).increment()
        try await Self.withMetricsServer({ MetricsServer(port: 0, metrics: metrics, logger: Self.quiet, onServerRunning: $0) }) { port in
            let scrape = try await BlockingExecutor.shared.run { try HTTP.get(port, "/metrics") }
            #expect(scrape.status == 200 && scrape.body.contains(#"relocator_moves_total{from="gold",to="bronze",outcome="retried",reason="io_error"}"#))
            #expect(scrape.body.contains("process_resident_memory_bytes") && scrape.body.contains("relocator_build_info"))
            if let problem = try Self.promtool(scrape.body) { Issue.record("promtool: \(problem)") }
        }
    }

    @Test func theMetricsServerPassesOverAPortAnotherProcessListensOn() async throws {
        let metrics = PrometheusMetrics()
        try await Self.withMetricsServer({ MetricsServer(port: 0, metrics: metrics, logger: Self.quiet, onServerRunning: $0) }) { taken in
            // The first port of the range is taken: the second server listens on the next (0: any free one).
            try await Self.withMetricsServer({ MetricsServer(ports: [taken, 0], metrics: metrics, logger: Self.quiet, onServerRunning: $0) }) { port in
                #expect(port != taken && port > 0)
                let health = try await BlockingExecutor.shared.run { try HTTP.get(port, "/healthz") }
                #expect(health.status == 200)
            }
        }
    }

    @Test func unknownSwiftMetricsNamesAreSanitizedWithHelp() throws {
        let registry = PrometheusMetrics()
        let factory = registry.factory
        factory.makeCounter(label: "some.library.events", dimensions: [("http.route", "/x")]).increment(by: 2)
        factory.makeMeter(label: "some.library.level", dimensions: [("http.request.method", "GET")]).set(Int64(1))
        let text = String(decoding: registry.scrape(), as: UTF8.self)
        #expect(text.contains(#"some_library_events_total{route="/x"} 2"#))
        #expect(text.contains(#"some_library_level{method="GET"} 1"#))
        #expect(try Self.promtool(text) == nil)
    }

    @Test func theProcessMetricsAreReadFromProcSelf() throws {
        // A command name may hold spaces and parentheses; the fields are counted after the last ')'.
        let line = "4242 (relocator (x) w) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 9 0 123456 800000000 12800"
            + String(repeating: " 0", count: 28)
        let stat = try #require(ProcessMetrics.parse(stat: line))
        #expect(stat == ProcessMetrics.Stat(userTicks: 250, systemTicks: 75, startTicks: 123456, virtualBytes: 800000000, residentPages: 12800))
        #expect(ProcessMetrics.bootTime("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n") == 1_700_000_000)
        #expect(ProcessMetrics.parse(stat: "garbage") == nil)
        // This process, read for real.
        let text = String(decoding: PrometheusMetrics().scrape(), as: UTF8.self)
        let resident = try #require(text.split(separator: "\n").first { $0.hasPrefix("process_resident_memory_bytes ") })
        #expect((Double(resident.split(separator: " ")[1]) ?? 0) > 1_000_000)
        let started = try #require(text.split(separator: "\n").first { $0.hasPrefix("process_start_time_seconds ") })
        let startTime = Double(started.split(separator: " ")[1]) ?? 0
        #expect(startTime > 1_600_000_000 && startTime <= Date().timeIntervalSince1970 + 1)
        #expect(try Self.promtool(text) == nil)
    }

    /// What the process sent to Redis is what a scrape says (a registry made now reports the
    /// whole count so far; other tests of the process send commands too: at least that many).
    @Test func theCommandsSentToRedisAreScrapedAsCounted() throws {
        let redis = RedisConnection(url: try TestEnvironment.redisURL())
        defer { redis.close() }
        _ = try redis.pipeline((1...20).map { _ in RedisCommand("PING") })
        let counted = RedisTraffic.commandsSent
        let text = String(decoding: PrometheusMetrics().scrape(), as: UTF8.self)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("relocator_redis_commands_sent_total ") })
        #expect(counted >= 20 && (Double(line.split(separator: " ")[1]) ?? 0) >= Double(counted), "\(line), counted \(counted)")
    }

    @Test func theQueuesCountersFollowRedisTotalsAndStartAgainAfterAReset() throws {
        let metrics = PrometheusMetrics()
        let gauges = QueueGauges(registry: metrics.registry)
        func value() -> String? {
            String(decoding: metrics.scrape(), as: UTF8.self).split(separator: "\n")
                .first { $0.hasPrefix(#"relocator_queue_moves_total{outcome="moved"} "#) }.map { String($0.split(separator: " ")[1]) }
        }
        var stats = QueueStats(levels: [])
        // A total read from Redis may be anything: the most negative, then back, grows nothing and traps nothing.
        for (total, expected) in [(5, "5"), (8, "8"), (8, "8"), (3, "11"), (Int64.min, "11"), (1, "12"), (Int64.min, "12")] {
            stats.totals[.moved] = total
            gauges.update(stats, jobs: JobsByLevel(), shards: 1, placement: nil)
            #expect(value() == expected, "after a total of \(total)")
        }
    }
}
