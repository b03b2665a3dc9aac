import Foundation
import HummingbirdTesting
import JobQueue
import RelocatorCore
import Testing
import TestSupport
@testable import RelocatorAPI

/// The operators' lists a page at a time: `?limit=&cursor=`, a total and a next cursor that
/// neither skips nor repeats an item while others are added or removed, and answers whose size
/// depends on the page, not on the list; over the memory queue (RelocatorAPIServerTests'
/// RedisPagingTests: the same over the Redis queue).
@Suite struct PagingTests {
    /// Creates `count` dead jobs (cids `first`…) as the scripts leave them, in the memory queue.
    static func bury(_ count: Int, firstCID first: Int64 = 1, gen: Int64, api: MemoryAPI) {
        var template = Job(cid: 1, count: 20000, filename: "x", dbLevel: "bronze", target: "gold", status: .dead, attempts: 5,
                           lastError: "source_missing: bronze/x is on no level's disk", gen: gen, enqueuedAt: gen, updatedAt: gen)
        template.reason = "source_missing"
        template.queuedBy = QueuedBy(who: "POST /post_sentence", rule: "count 20000 falls in gold (10000–99999)")
        api.queue.bury((first..<first + Int64(count)).map { cid in
            var job = template
            job.cid = cid
            job.filename = "dir/f\(cid).mp4"
            return job
        })
        #expect(api.queue.list(api.queue.keys.shard(0).dead).count >= count)
    }

    @Test func eightyThousandDeadLettersAnswerAPageOfBoundedSizeWithTheTotal() async throws {
        let api = MemoryAPI()
        Self.bury(80_000, gen: 1_800_000_000_000, api: api)
        try await api.test { client in
            let first = try await client.get("/v1/dead")
            #expect(first.status == .ok)
            let body = try #require(first.json)
            let items = try #require(body["dead"] as? [[String: Any]])
            #expect(items.count == PageRequest.defaultLimit && body["total"] as? Int == 80_000 && body["limit"] as? Int == 50)
            // Newest first: same generation, so the highest cids.
            #expect(items.first?["cid"] as? Int == 80_000 && items.last?["cid"] as? Int == 79_951)
            #expect(body["next_cursor"] as? String == "79951:1800000000000")
            #expect(first.body.readableBytes < 24 * 1024, "\(first.body.readableBytes) bytes for 50 dead jobs")

            let most = try await client.get("/v1/dead?limit=1000&cursor=79951:1800000000000")
            let page = try #require(most.json)
            #expect((page["dead"] as? [[String: Any]])?.count == 1000 && page["total"] as? Int == 80_000)
            #expect((page["dead"] as? [[String: Any]])?.first?["cid"] as? Int == 79_950)
            #expect(most.body.readableBytes < 400 * 1024, "\(most.body.readableBytes) bytes for 1000 dead jobs")

            let html = try await client.get("/ui/dead")
            #expect(html.status == .ok)
            #expect(html.text.components(separatedBy: "<tr data-cid=").count - 1 == 50)
            #expect(html.text.contains(#"<span data-field="total">80000</span> dead jobs shown"#))
            #expect(html.text.contains(#"href="/ui/dead?cursor=79951%3A1800000000000" rel="next""#))
            #expect(html.body.readableBytes < 64 * 1024, "\(html.body.readableBytes) bytes for the page")
        }
    }

    @Test func aLimitOrACursorThatIsNotOneIsA400ThatSaysSo() async throws {
        let api = MemoryAPI()
        try await api.test { client in
            for (query, words) in [("limit=0", "limit must be a whole number from 1 to 1000, got 0"),
                                   ("limit=1001", "limit must be a whole number from 1 to 1000, got 1001"),
                                   ("limit=ten", "limit must be a whole number from 1 to 1000, got 'ten'"),
                                   ("cursor=" + String(repeating: "9", count: 300), "cursor is not one this API gave out")] {
                for path in ["/v1/dead", "/v1/retrying", "/v1/deferred", "/v1/relocations", "/ui/dead"] {
                    let answer = try await client.get("\(path)?\(query)")
                    #expect(answer.status == .badRequest && answer.text.contains(words), "\(path)?\(query): \(answer.text)")
                }
            }
            for path in ["/v1/retrying?cursor=nonsense", "/v1/relocations?cursor=-3", "/v1/dead?cursor=junk", "/v1/dead?cursor=1:2:3"] {
                let answer = try await client.get(path)
                #expect(answer.status == .badRequest && answer.text.contains("cursor is not one this API gave out"), "\(path)")
            }
        }
    }

    /// Page 1 is read; then dead jobs on pages 1 and 2 are purged and newer ones die. Page 2, read
    /// with page 1's cursor, is the rest of the list as it was, less what went: nothing skipped,
    /// nothing repeated.
    @Test func theNextCursorNeitherSkipsNorRepeatsWhileTheListChanges() async throws {
        let api = MemoryAPI()
        Self.bury(120, gen: 1_800_000_000_000, api: api)
        try await api.test { client in
            func cids(_ uri: String) async throws -> (cids: [Int], total: Int?, next: String?) {
                let body = try #require(try await client.get(uri).json)
                return ((body["dead"] as? [[String: Any]] ?? []).compactMap { $0["cid"] as? Int }, body["total"] as? Int,
                        body["next_cursor"] as? String)
            }
            let one = try await cids("/v1/dead?limit=40")
            #expect(one.cids == Array((81...120).reversed()) && one.total == 120)
            let cursor = try #require(one.next)
            // Gone: one of page 1 and two of page 2; added: ten newer dead jobs.
            let purged = try await client.postJSON("/v1/dead/purge", #"{"cids": [100, 80, 75]}"#)
            #expect(purged.status == .ok, "\(purged.text)")
            Self.bury(10, firstCID: 1000, gen: 1_800_000_000_001, api: api)
            let two = try await cids("/v1/dead?limit=40&cursor=\(cursor)")
            #expect(two.cids == Array((38...80).reversed()).filter { $0 != 80 && $0 != 75 }.prefix(40).map { $0 })
            #expect(two.total == 127 && two.next == "\(two.cids.last!):1800000000000")
            // To the end: every job of the list as it was, less the purged, exactly once.
            var seen = one.cids + two.cids
            var next = two.next
            while let at = next {
                let page = try await cids("/v1/dead?limit=40&cursor=\(at)")
                seen += page.cids
                next = page.next
            }
            // 100 was shown on page 1 before it went; 80 and 75 went before their page was read.
            #expect(seen.filter { $0 < 1000 } == Array((1...120).reversed()).filter { ![80, 75].contains($0) })
            #expect(Set(seen).count == seen.count)
        }
    }

    @Test func retryingAndDeferredJobsArePagedSoonestFirstWithTheirReasonsAndNextAttempt() async throws {
        let api = MemoryAPI()
        try api.add((1...5).map { (Int64($0), "f\($0).mp4", "bronze") })
        for cid in Int64(1)...5 { _ = try await api.service.submit(cid: cid, count: 50_000, from: .countRoute) }
        var due: [Int64] = []
        while let delivery = try api.claim() {
            #expect(try api.queue.complete(delivery, .failed(.noSpace, message: "no_space: gold is full", permanent: false,
                                                             delay: .seconds(600 * delivery.job.cid), maxAttempts: 5)) == .retrying)
            due.append(delivery.job.cid)
        }
        #expect(due.count == 5)
        try await api.test { client in
            let first = try #require(try await client.get("/v1/retrying?limit=2").json)
            let items = try #require(first["retrying"] as? [[String: Any]])
            #expect(items.compactMap { $0["cid"] as? Int } == [1, 2] && first["total"] as? Int == 5)
            #expect(items[0]["reason"] as? String == "no_space" && items[0]["last_error"] as? String == "no_space: gold is full")
            #expect(items[0]["due_at"] is String && (items[0]["queued_by"] as? [String: Any])?["who"] as? String == "POST /v1/contents/{cid}/count")
            let cursor = try #require(first["next_cursor"] as? String)
            let rest = try #require(try await client.get("/v1/retrying?limit=10&cursor=\(cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)").json)
            #expect((rest["retrying"] as? [[String: Any]])?.compactMap { $0["cid"] as? Int } == [3, 4, 5] && rest["next_cursor"] is NSNull)
            #expect(try #require(try await client.get("/v1/deferred").json)["total"] as? Int == 0)
            let page = try await client.get("/ui/waiting?limit=2")
            #expect(page.text.contains("no_space: gold is full") && page.text.contains(#"rel="next""#)
                    && page.text.contains(#"<span data-field="total">5</span> retrying shown"#))
            // The next attempt, from now: 10 min after the failure, less however long this test has taken since.
            #expect(WaitingPage.remaining(page.text).map { (1...600).contains($0) } == true, "the next attempt, from now: \(page.text)")
        }
    }

    @Test func deferredJobsAreListedWithWhyTheyWaitAndUntilWhen() async throws {
        let api = MemoryAPI()
        try api.add([(1, "a.mp4", "bronze"), (2, "b.mp4", "bronze")])
        for cid in Int64(1)...2 { _ = try await api.service.submit(cid: cid, count: 50_000, from: .enqueueCommand) }
        while let delivery = try api.claim() {
            #expect(try api.queue.complete(delivery, .deferred(reason: "gold would be at 95.0 % (high watermark 90 %)",
                                                               delay: .seconds(1200 * delivery.job.cid), lockHeld: true)) == .deferred)
        }
        try await api.test { client in
            let body = try #require(try await client.get("/v1/deferred").json)
            let items = try #require(body["deferred"] as? [[String: Any]])
            #expect(items.compactMap { $0["cid"] as? Int } == [1, 2] && body["total"] as? Int == 2 && body["next_cursor"] is NSNull)
            #expect(items[0]["defer_reason"] as? String == "gold would be at 95.0 % (high watermark 90 %)" && items[0]["status"] as? String == "deferred")
            let page = try await client.get("/ui/waiting").text
            #expect(page.contains(#"<td data-field="reason">gold would be at 95.0 % (high watermark 90 %)</td>"#), "\(page)")
            // Due 20 minutes after it was deferred: a little less is left when the page is read.
            #expect(WaitingPage.remaining(page).map { (1...1200).contains($0) } == true, "the next attempt: \(page)")
            #expect(page.contains("relocator enqueue: count 50000 falls in gold (10000–99999)"))
        }
    }
}
