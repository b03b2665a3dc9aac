import Foundation
import HummingbirdTesting
import JobQueue
import RelocatorCore
import RelocatorMetrics
import Testing
@testable import RelocatorAPI

/// The extremes suite, through the HTTP layer: 0, −1, 2^53 − 1, 2^53, Int64.max and beyond from a
/// request; Int64's bounds in the queue's job and heartbeat fields; the queue's clock and the API's
/// two hours off (the same with Redis' own values: RelocatorAPIServerTests). Nothing traps (a trap would end the test process); every answer is 2xx, 4xx or 503.
@Suite struct ExtremesTests {
    static let twoHours: Int64 = 2 * 3600 * 1000
    static let numbers = ["0", "-1", "9007199254740991", "9007199254740992", "9223372036854775807", "9223372036854775808",
                          "-9223372036854775808", "-9223372036854775809", "99999999999999999999999", "1e300", "1.5", "NaN", "Infinity", "", "007"]

    func expectAnswered(_ response: TestResponse, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let code = Int(response.status.code)
        #expect((200..<300).contains(code) || (400..<500).contains(code) || code == 503, "\(what): \(code) \(response.text.prefix(300))",
                sourceLocation: sourceLocation)
    }

    @Test func everyNumberARequestCarriesIsBoundedAndAnsweredWith2xx4xxOr503() async throws {
        let api = MemoryAPI(halfLife: .seconds(3600))
        try api.add([(1, "a.bin", "bronze"), (2, "b.bin", "bronze")])
        try await api.test { client in
            for number in Self.numbers {
                let form = try await client.postForm("/post_sentence", "cid=1&count=\(number)")
                expectAnswered(form, "count=\(number)")
                let body = try await client.postJSON("/v1/contents/2/count", #"{"count": \#(number)}"#)
                expectAnswered(body, "{count: \(number)}")
                expectAnswered(try await client.postJSON("/v1/contents/1/hits", #"{"n": \#(number)}"#), "{n: \(number)}")
                for path in ["/v1/jobs/\(number)", "/v1/contents/\(number)", "/v1/contents/\(number)/why", "/v1/relocations?cid=\(number)&limit=\(number)",
                             "/ui/relocations?cid=\(number)", "/v1/contents/\(number)/count"] {
                    expectAnswered(try await client.get(path), path)
                }
                // Beyond 2^53 − 1 a count is refused, naming the bound.
                if let value = Int64(number), value > CountBound.max {
                    #expect(form.status == .badRequest && (form.json?["message"] as? String)?.contains("9007199254740991 (2^53 − 1") == true, "\(form.text)")
                    #expect(body.status == .badRequest && (body.json?["message"] as? String)?.contains("9007199254740991 (2^53 − 1") == true, "\(body.text)")
                }
                if number == "99999999999999999999999" || number == "9223372036854775808" {
                    #expect(form.status == .badRequest && (form.json?["message"] as? String)?.contains("9007199254740991") == true, "\(form.text)")
                }
            }
            // 2^53 − 1 itself is a count: it goes to the top level, whose max_counts rises to it.
            let top = try await client.postForm("/post_sentence", "cid=2&count=9007199254740991")
            #expect(top.status == .ok && top.json?["target"] as? String == "gold", "\(top.text)")
            let levels = try await client.get("/v1/levels").json?["levels"] as? [[String: Any]] ?? []
            #expect(levels.contains { $0["name"] as? String == "gold" && ($0["max_counts"] as? NSNumber)?.int64Value == CountBound.max }, "\(levels)")
            #expect(try await client.postForm("/post_sentence", "cid=1&count=0").status == .ok)
        }
    }

    /// Inside the bound, a count no level holds is still a 422.
    @Test func inTheBoundACountNoLevelHoldsIsA422() async throws {
        let api = MemoryAPI(levels: [LevelRange(name: "silver", minCounts: 100, maxCounts: 999), LevelRange(name: "gold", minCounts: 1000, maxCounts: 9999)])
        try api.add([(1, "a.bin", "silver")])
        try await api.test { client in
            let low = try await client.postForm("/post_sentence", "cid=1&count=5")
            #expect(low.status == .unprocessableContent && low.json?["error"] as? String == "no_level", "\(low.text)")
            let json = try await client.postJSON("/v1/contents/1/count", #"{"count": 0}"#)
            #expect(json.status == .unprocessableContent, "\(json.text)")
        }
    }

    /// A job, a dead letter and a heartbeat whose numbers sit at Int64's bounds (no script writes
    /// them; a hand or an older version may), and the API's clock two hours either side of the
    /// queue's: every read route, the dashboard and /metrics answer. (RelocatorAPIServerTests: scores
    /// of 1e300 and infinities, hit counters and counters at the bounds, in a real Redis.)
    @Test func queueValuesAtTheExtremesAndClocksTwoHoursApartTrapNothing() async throws {
        let api = MemoryAPI(halfLife: .seconds(60))
        try api.add([1, 2, 3, 4, 5, 6].map { (Int64($0), "f\($0).bin", "silver") })
        _ = try await api.service.submit(cid: 5, count: 50_000, from: .countRoute)
        _ = try #require(try api.claim(worker: "w-x"))
        for (field, value) in [(JobField.count, Int64.max), (.attempts, .max), (.bytesDone, .max), (.bytesTotal, 1), (.startedAt, .min),
                               (.enqueuedAt, .max), (.updatedAt, .min)] {
            api.queue.corrupt(cid: 5, field: field, value: String(value))
        }
        api.queue.bury([Job(cid: 6, count: 0, filename: "f6.bin", dbLevel: "gold", target: "silver", status: .dead, attempts: 1, lastError: "x",
                            gen: .max, enqueuedAt: .min, updatedAt: .min)])
        try api.beat(Heartbeat(id: "w-x", kind: .worker, levels: ["gold", "silver"], concurrency: .max, startedAt: .max,
                               disks: DiskReport(levels: ["gold": .init(used: .max, free: -1, size: .max), "silver": .init(used: -5, free: -5, size: 0)])))
        try await api.test(metrics: PrometheusMetrics()) { client in
            for jump in [-Self.twoHours, Self.twoHours, Self.twoHours] {
                api.shiftClock(by: jump)
                let off = api.now - WallClock.milliseconds()
                for path in ["/v1/queues", "/metrics", "/ui", "/ui/workers", "/ui/dead", "/ui/levels", "/ui/relocations", "/v1/dead",
                             "/v1/jobs/5", "/v1/jobs/6", "/v1/contents/1/why", "/v1/contents/5/why", "/v1/contents/5", "/readyz", "/healthz"] {
                    expectAnswered(try await client.get(path), "\(path) with the clock \(off / 1000) s off")
                }
                for cid in 1...4 {
                    let hits = try await client.postJSON("/v1/contents/\(cid)/hits", #"{"n": 5}"#)
                    expectAnswered(hits, "hits of cid \(cid)")
                    let value = hits.json?["value"] as? Double ?? -1
                    #expect(value >= 0 && value <= Double(CountBound.max), "cid \(cid): \(hits.text)")
                }
                for cid in [1, 2, 5] {
                    expectAnswered(try await client.postForm("/post_sentence", "cid=\(cid)&count=9007199254740991"), "count of cid \(cid)")
                }
            }
        }
    }
}
