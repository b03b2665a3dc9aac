import Foundation
import Hummingbird
import HummingbirdTesting
import JobQueue
import RelocatorApp
import RelocatorCore
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

    func move(done: Int64, total: Int64, startedAt: Int64) -> HeldMove {
        var job = Job(cid: 9, count: 1, filename: "<b>x</b>.mp4", dbLevel: "bronze", target: "gold", status: .moving, gen: 1, enqueuedAt: 1, updatedAt: 1)
        job.bytesDone = done
        job.bytesTotal = total
        job.startedAt = startedAt
        return HeldMove(worker: "w<1>", id: "9:1", job: job)
    }

    @Test func theOverviewRendersEveryLevelTheTotalsAndTheRateChart() throws {
        let dashboard = try Dashboard()
        let now: Int64 = 1_800_000_000_000
        let minute = now / 60_000
        var moved = (0..<60).map { ThroughputRing.Minute(minute: minute - 59 + Int64($0)) }
        moved[59].count = 12
        moved[10].count = 3
        let committed = moved.map { ThroughputRing.Minute(minute: $0.minute, count: $0.count / 3) }
        let model = OverviewModel(stats: stats(), moves: [move(done: 1, total: 2, startedAt: 1)],
                                  policies: ["gold": LevelPolicy(highWater: 90, lowWater: 80)],
                                  throughput: ThroughputChart(moved: moved, committed: committed))
        let html = dashboard.render(page: "overview", model: model, adminRequired: true, now: 2000, banners: Banner.from(stats()))
        #expect(html.contains(#"<tr data-level="gold">"#) && html.contains(#"<td class="num" data-field="depth">4</td>"#))
        #expect(html.contains(#"data-field="oldest">1 min 30 s<"#) && html.contains(#"data-field="in-flight">1<"#))
        // gold: 1 GiB used, 2 GiB available: a third full as df says it, with both watermarks drawn.
        #expect(html.contains(#"data-percent="33.3""#) && html.contains(#"class="mark high" style="left: 90%""#)
                && html.contains(#"class="mark low" style="left: 80%""#) && html.contains("high water 90 % · low water 80 %"))
        #expect(html.contains("data-action=\"/v1/levels/gold/resume\""))
        #expect(html.contains(#"data-field="dead"><a href="/ui/dead">2</a>"#) && html.contains(#"data-field="moves-last-hour">15<"#))
        #expect(html.contains(#"data-field="commits-last-hour">5<"#) && html.contains(#"data-field="moves-this-minute">12<"#))
        #expect(html.contains(#"data-field="workers-alive"><a href="/ui/workers">1</a>"#)
                && html.contains(#"data-field="committers-alive"><a href="/ui/workers#committers">0</a>"#))
        #expect(html.contains(#"data-admin-required="true""#) && html.contains(#"<script src="/ui/dashboard.js" defer>"#))
        #expect(!html.contains("http://") && !html.contains("https://"), "no external asset")
        #expect(html.components(separatedBy: "<rect ").count - 1 == 60)
        // The axes: ticks 0, 10 and 20 moves a minute, and the minutes from −60 to now.
        #expect(html.contains(">20</text>") && html.contains(">10</text>") && html.contains(">0</text>"))
        #expect(html.contains(">−60 min</text>") && html.contains(">now</text>") && html.contains(#"<polyline class="commits""#))
        // Gold is paused with 4 jobs: a banner says so.
        #expect(html.contains(#"data-banner="paused""#))
    }

    @Test func theChartsTopIsEvenAndAtLeastThePeak() {
        #expect([0, 1, 4, 5, 10, 11, 20, 21, 50, 51, 999, 1001].map(ThroughputChart.niceCeiling) == [4, 4, 4, 10, 10, 20, 20, 50, 50, 100, 1000, 2000])
        #expect(ThroughputChart.niceCeiling(.max) % 2 == 0 && ThroughputChart.niceCeiling(.max) >= Int64.max / 2)
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

    @Test func deadLettersHaveReplayAndPurgeButtonsAndAPager() throws {
        let dashboard = try Dashboard()
        var job = Job(cid: 4, count: 1, filename: "d.mp4", dbLevel: "bronze", target: "gold", status: .dead, attempts: 5,
                      lastError: "source_missing: gone", gen: 1, enqueuedAt: 1, updatedAt: 1_795_815_235_123)
        job.reason = "source_missing"
        job.queuedBy = QueuedBy(who: "POST /post_sentence", rule: "count 5000 falls in gold (1000–9999)")
        let page = Page(items: [DeadLetter(id: "4:1", shard: 0, job: job)], total: 80_000, next: "4:1")
        let html = dashboard.render(page: "dead", model: DeadModel(page: page, limit: 1, cursor: nil), adminRequired: false, now: 0)
        #expect(html.contains(#"data-body='{"cids": [4]}'>Replay</button>"#) && html.contains("source_missing: gone"))
        #expect(html.contains("2026-11-27T21:33:55.123Z") && html.contains(">Purge all</button>"))
        #expect(html.contains("POST /post_sentence: count 5000 falls in gold (1000–9999)"))
        #expect(html.contains(#"<span data-field="shown">1</span> of <span data-field="total">80000</span> dead jobs shown"#))
        #expect(html.contains(#"<a href="/ui/dead?limit=1&amp;cursor=4%3A1" rel="next">"#) && !html.contains(#"rel="first""#))
        let one = dashboard.render(page: "dead", model: DeadModel(page: Page(items: page.items, total: 1, next: nil), limit: 50, cursor: "9:9"),
                                   adminRequired: false, now: 0)
        #expect(one.contains(#"<span data-field="total">1</span> dead job shown · <a href="/ui/dead" rel="first">first page</a></p>"#))
    }

    @Test func thePagesAreServedWithLiveDataAndTheScriptIsEmbedded() async throws {
        let api = MemoryAPI()
        try api.add([(1, "a.mp4", "bronze"), (2, "b.mp4", "bronze")])
        _ = try await api.service.submit(cid: 1, count: 50000, from: .countRoute)
        _ = try await api.service.submit(cid: 2, count: 50000, from: .countRoute)
        let job = try #require(try api.claim())
        try api.kill(job)
        try await api.test { client in
            let overview = try await client.get("/ui")
            #expect(overview.status == .ok && overview.headers[.contentType] == "text/html; charset=utf-8")
            #expect(overview.text.contains(#"<tr data-level="gold">"#) && overview.text.contains(#"data-field="depth">1<"#))
            #expect(try await client.get("/ui/dead").text.contains("data-cid=\"\(job.job.cid)\""))
            #expect(try await client.get("/ui/workers").status == .ok)
            #expect(try await client.get("/ui/levels").text.contains(#"<tr data-level="silver">"#))
            #expect(try await client.get("/ui/relocations?cid=1").text.contains("No relocation recorded for cid 1"))
            #expect(try await client.get("/ui/relocations?cid=x").status == .badRequest)
            let script = try await client.get("/ui/dashboard.js")
            #expect(script.text.contains("setInterval(refresh, 2000)") && script.text.contains("sessionStorage"))
            #expect(try await client.get("/ui/dashboard.css").status == .ok)
        }
    }

    /// Jobs queued for a level no live worker serves, and finished moves no committer records: a
    /// banner says each. Workers and committers are counted apart.
    @Test func bannersSayWhatIsStuckAndWorkersAreCountedApartFromCommitters() async throws {
        let api = MemoryAPI()
        try api.add([(1, "a.mp4", "bronze"), (2, "b.mp4", "bronze")])
        _ = try await api.service.submit(cid: 1, count: 50000, from: .countRoute)
        try api.beat(Heartbeat(id: "w9", kind: .worker, levels: ["silver"]))
        try await api.test { client in
            let overview = try await client.get("/ui")
            #expect(overview.status == .ok)
            #expect(overview.text.contains(#"data-banner="stuck""#)
                    && overview.text.contains("1 job queued for gold and no live worker takes them: start one with relocator worker --levels gold."))
            #expect(overview.text.contains(#"data-field="workers-alive"><a href="/ui/workers">1</a>"#)
                    && overview.text.contains(#"data-field="committers-alive"><a href="/ui/workers#committers">0</a>"#))
            // A worker for gold takes the job and moves it: nothing is stuck, but no committer records it.
            let delivery = try #require(try api.claim(worker: "w1", levels: ["gold"]))
            try api.beat(Heartbeat(id: "w1", kind: .worker, levels: ["gold"]))
            #expect(try api.queue.complete(delivery, .moved(try Checksum(algorithm: .xxh128, hex: String(repeating: "00", count: 16)), bytes: 1,
                                                            method: .copied, foundIn: nil)) == .done)
            // The stats are read at most once a second: wait for a reading that has the change.
            func page(until condition: (String) -> Bool) async throws -> String {
                var text = ""
                for _ in 0..<200 {
                    text = try await client.get("/ui/workers").text
                    if condition(text) { break }
                    try await Task.sleep(for: .milliseconds(25))
                }
                return text
            }
            let after = try await page { $0.contains(#"<tr data-worker="w1">"#) }
            #expect(!after.contains(#"data-banner="stuck""#) && after.contains(#"data-banner="uncommitted""#))
            #expect(after.contains(#"<tr data-worker="w1">"#) && after.contains("No committer has announced itself."))
            try api.beat(Heartbeat(id: "c1", kind: .committer))
            let page = try await page { $0.contains(#"<tr data-committer="c1">"#) }
            #expect(page.contains(#"<tr data-committer="c1">"#) && !page.contains(#"data-banner="uncommitted""#))
            #expect(!page.contains(#"<tr data-worker="c1""#), "a committer is not listed as a worker")
        }
    }

    /// The queue goes away: each page still renders, with a banner that says what cannot be read and
    /// the last data it showed (or none yet) — never an error page; once it is back the banner goes.
    /// (RelocatorAPIServerTests: the same with a real Redis stopped and started again.)
    @Test func whileTheQueueIsAwayThePagesRenderWithABannerAndTheLastReading() async throws {
        let api = MemoryAPI()
        try api.add([(1, "a.mp4", "bronze")])
        _ = try await api.service.submit(cid: 1, count: 50000, from: .countRoute)
        try await api.test { client in
            let before = try await client.get("/ui")
            #expect(before.status == .ok && before.text.contains(#"data-field="depth">1<"#))
            api.queue.setUnavailable(true)
            let during = try await client.get("/ui")
            #expect(during.status == .serviceUnavailable && during.headers[.contentType] == "text/html; charset=utf-8")
            #expect(during.text.contains(#"data-banner="outage""#) && during.text.contains("Cannot read the data now: "))
            #expect(during.text.contains(#"<tr data-level="gold">"#) && during.text.contains(#"data-field="depth">1<"#), "the last reading")
            #expect(!during.text.contains("Cannot show this page"))
            let never = try await client.get("/ui/waiting")
            #expect(never.status == .serviceUnavailable && never.text.contains(#"data-banner="outage""#)
                    && never.text.contains("nothing was read since this API process started") && never.text.contains("Nothing read yet"))
            api.queue.setUnavailable(false)
            var back = try await client.get("/ui")
            for _ in 0..<100 where back.status != .ok {
                try await Task.sleep(for: .milliseconds(50))
                back = try await client.get("/ui")
            }
            #expect(back.status == .ok && !back.text.contains(#"data-banner="outage""#))
        }
    }

    /// A move's progress as its worker reports it while it copies (bytes copied of the total), on
    /// the workers page; the waiting page lists deferred jobs with why and when.
    @Test func aMoveInFlightShowsItsBytesCopiedOfTheTotal() async throws {
        let api = MemoryAPI()
        try api.add([(1, "a.mp4", "bronze")])
        _ = try await api.service.submit(cid: 1, count: 50000, from: .countRoute)
        let delivery = try #require(try api.claim(worker: "w1", levels: ["gold"]))
        try api.beat(Heartbeat(id: "w1", kind: .worker, levels: ["gold"]))
        try await api.test { client in
            #expect(try await client.get("/ui/workers").text.contains("starting (progress shows after its first second)"))
            // What the worker's copy records as it goes.
            #expect(try api.queue.record(delivery, .copied(3 << 20, of: 12 << 20)))
            let page = try await client.get("/ui/workers").text
            #expect(page.contains(#"<td class="num" data-field="copied">3.0 MiB</td><td class="num" data-field="total">12 MiB</td>"#), "\(page)")
            #expect(page.contains(#"<progress max="100" value="25">"#))
        }
    }

    @Test func aPullFromAnotherHostShowsItsTwoHostsAndItsBytesVerifiedInTheJobWhyAndTheDashboard() async throws {
        let api = MemoryAPI()
        try api.add([(1, "a.mp4", "bronze")])
        _ = try await api.service.submit(cid: 1, count: 50000, from: .countRoute)
        let delivery = try #require(try api.claim(worker: "edge", levels: ["gold"]))
        try api.beat(Heartbeat(id: "edge", kind: .worker, levels: ["gold"]))
        let route = PullRoute(sourceWorker: "archive", sourceAddress: "10.0.0.2:7070", targetHost: "edge-host")
        try await api.test { client in
            // A move on one host names no hosts.
            let local = try #require(try await client.get("/v1/jobs/1").json)
            #expect(local["pulled_from"] is NSNull && local["verified"] is NSNull, "\(local)")
            #expect(try await !client.get("/ui/workers").text.contains(#"data-field="hosts""#))

            // What a pull records once it located the source, then as its chunks are verified.
            #expect(try api.queue.record(delivery, .pulling(route)))
            #expect(try api.queue.record(delivery, .verified(3 << 20, of: 12 << 20)))
            let job = try #require(try await client.get("/v1/jobs/1").json)
            let hosts = try #require(job["pulled_from"] as? [String: Any], "\(job)")
            #expect(hosts["from_worker"] as? String == "archive" && hosts["from_address"] as? String == "10.0.0.2:7070"
                    && hosts["to_host"] as? String == "edge-host")
            #expect(job["bytes_done"] as? Int == 3 << 20 && job["bytes_total"] as? Int == 12 << 20 && job["verified"] as? Int == 3 << 20)
            let content = try #require(try await client.get("/v1/contents/1").json?["job"] as? [String: Any])
            #expect((content["pulled_from"] as? [String: Any])?["from_worker"] as? String == "archive")

            let why = try #require(try await client.get("/v1/contents/1/why").json)
            let summary = try #require(why["summary"] as? String)
            #expect(summary.contains("It is pulled from another host: worker archive (10.0.0.2:7070) → edge-host (3.0 MiB of 12 MiB verified)."), "\(summary)")
            #expect(((why["job"] as? [String: Any])?["pulled_from"] as? [String: Any])?["to_host"] as? String == "edge-host")

            let page = try await client.get("/ui/workers").text
            #expect(page.contains(#"bronze → gold<br><small data-field="hosts">worker archive (10.0.0.2:7070) → edge-host</small>"#), "\(page)")
            #expect(page.contains(#"<td class="num" data-field="copied">3.0 MiB</td><td class="num" data-field="total">12 MiB</td>"#))

            // The count route's answer keeps its fields.
            let counted = try await client.postJSON("/v1/contents/1/count", #"{"count": 60000}"#)
            let answered = try #require(counted.json?["job"] as? [String: Any], "\(counted.text)")
            #expect(answered["pulled_from"] == nil && answered["verified"] == nil && answered["bytes_done"] as? Int == 3 << 20)
        }
    }
}
