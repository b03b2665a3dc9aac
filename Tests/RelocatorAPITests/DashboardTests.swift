import Foundation
import Hummingbird
import HummingbirdTesting
import JobQueue
import RelocatorCore
import SQLStore
import Testing
@testable import RelocatorAPI

/// The dashboard's pages: rendered from the embedded templates (pure), and served with live data.
@Suite struct DashboardTests {
    func stats() -> QueueStats {
        var stats = QueueStats(levels: [QueueStats.Level(level: "bronze"), QueueStats.Level(level: "gold", depth: 4, oldestAgeMilliseconds: 90_000, paused: true)])
        stats.dead = 2
        stats.retry = 1
        stats.totals[.moved] = 17
        stats.workers = [QueueStats.Worker(worker: "w<1>", alive: true, info: [.kind: "worker", .host: "box", .levels: "gold", .beatAt: "1000",
                                                               .disks: "gold=1073741824,2147483648,3221225472"], held: 1)]
        return stats
    }

    func move(done: Int64, total: Int64, startedAt: Int64) -> JobQueue.HeldMove {
        var job = Job(cid: 9, count: 1, filename: "<b>x</b>.mp4", dbLevel: "bronze", target: "gold", status: .moving, gen: 1, enqueuedAt: 1, updatedAt: 1)
        job.bytesDone = done
        job.bytesTotal = total
        job.startedAt = startedAt
        return .init(worker: "w<1>", id: "9:1", job: job, fields: [:])
    }

    @Test func theOverviewRendersEveryLevelTheTotalsAndTheRateChart() throws {
        let dashboard = try Dashboard()
        var perMinute = Array(repeating: 0, count: 60)
        perMinute[59] = 12
        perMinute[10] = 3
        let html = dashboard.render(page: "overview", model: OverviewModel(stats: stats(), moves: [move(done: 1, total: 2, startedAt: 1)], perMinute: perMinute),
                                    adminRequired: true, now: 2000)
        #expect(html.contains(#"<tr data-level="gold">"#) && html.contains(#"<td class="num" data-field="depth">4</td>"#))
        #expect(html.contains(#"data-field="oldest">1 min 30 s<"#) && html.contains(#"data-field="in-flight">1<"#))
        #expect(html.contains(#"data-field="disk-free">2.0 GiB<"#) && html.contains("data-action=\"/v1/levels/gold/resume\""))
        #expect(html.contains(#"data-field="dead"><a href="/ui/dead">2</a>"#) && html.contains(#"data-field="moves-last-hour">15<"#))
        #expect(html.contains(#"data-admin-required="true""#) && html.contains(#"<script src="/ui/dashboard.js" defer>"#))
        #expect(!html.contains("http://") && !html.contains("https://"), "no external asset")
        #expect(html.components(separatedBy: "<rect ").count - 1 == 60)
    }

    @Test func workersShowEachMoveWithProgressRateAndETAWithNamesEscaped() throws {
        let dashboard = try Dashboard()
        // 25 MiB of 100 MiB in 10 s: 2.5 MiB/s, 30 s left.
        let model = WorkersModel(stats: stats(), moves: [move(done: 25 << 20, total: 100 << 20, startedAt: 0)], now: 10_000)
        let html = dashboard.render(page: "workers", model: model, adminRequired: false, now: 10_000)
        #expect(html.contains("25 MiB") && html.contains("100 MiB") && html.contains("2.5 MiB/s") && html.contains("30 s"))
        #expect(html.contains(#"<progress max="100" value="25">"#))
        #expect(html.contains("&lt;b&gt;x&lt;/b&gt;.mp4") && !html.contains("<b>x</b>"))
        #expect(html.contains("w&lt;1&gt;"))
    }

    @Test func deadLettersHaveReplayAndPurgeButtons() throws {
        let dashboard = try Dashboard()
        var job = Job(cid: 4, count: 1, filename: "d.mp4", dbLevel: "bronze", target: "gold", status: .dead, attempts: 5,
                      lastError: "source_missing: gone", gen: 1, enqueuedAt: 1, updatedAt: 1_795_815_235_123)
        job.reason = "source_missing"
        let html = dashboard.render(page: "dead", model: DeadModel(dead: [JobQueue.DeadJob(deadID: "4:1", shard: 0, job: job, fields: [:])]),
                                    adminRequired: false, now: 0)
        #expect(html.contains(#"data-body='{"cids": [4]}'>Replay</button>"#) && html.contains("source_missing: gone"))
        #expect(html.contains("2026-11-27T21:33:55.123Z") && html.contains(">Purge all</button>"))
    }

    @Test func thePagesAreServedWithLiveDataAndTheScriptIsEmbedded() async throws {
        let api = try APIFixture()
        defer { api.tearDown() }
        try api.addContents([(1, "a.mp4", "bronze", 10), (2, "b.mp4", "bronze", 10)])
        _ = try await api.service.submit(cid: 1, count: 50000)
        _ = try await api.service.submit(cid: 2, count: 50000)
        let job = try #require(try api.claim())
        try api.kill(job)
        try await api.test { client in
            let overview = try await client.get("/ui")
            #expect(overview.status == .ok && overview.headers[.contentType] == "text/html; charset=utf-8")
            #expect(overview.text.contains(#"<tr data-level="gold">"#) && overview.text.contains(#"data-field="depth">1<"#))
            #expect(try await client.get("/ui/dead").text.contains("data-cid=\"\(job.cid)\""))
            #expect(try await client.get("/ui/workers").status == .ok)
            #expect(try await client.get("/ui/levels").text.contains(#"<tr data-level="silver">"#))
            #expect(try await client.get("/ui/relocations?cid=1").text.contains("No relocation recorded for cid 1"))
            #expect(try await client.get("/ui/relocations?cid=x").status == .badRequest)
            let script = try await client.get("/ui/dashboard.js")
            #expect(script.text.contains("setInterval(refresh, 2000)") && script.text.contains("sessionStorage"))
            #expect(try await client.get("/ui/dashboard.css").status == .ok)
        }
    }
}
