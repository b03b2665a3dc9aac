import Foundation
import HummingbirdTesting
import RedisClient
import RelocatorCore
import Testing
import TestSupport
@testable import RelocatorAPI

/// A real Redis that stops, or none where the URL points: the dashboard and readiness as the
/// Redis gateway reports them. (RelocatorAPITests: the same routes over a memory queue made
/// unavailable, without a server.)
@Suite struct RedisOutageAPITests {
    /// Redis stops: each page still renders, with a banner that says what cannot be read and the
    /// last data it showed (or none yet) — never an error page; once Redis is back the banner goes.
    @Test func whileRedisIsDownThePagesRenderWithABannerAndTheLastReading() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        let api = try APIFixture(redisURL: server.url)
        defer { api.tearDown() }
        try api.addContents([(1, "a.mp4", "bronze", nil)])
        _ = try await api.service.submit(cid: 1, count: 50000, from: .countRoute)
        try await api.test { client in
            let before = try await client.get("/ui")
            #expect(before.status == .ok && before.text.contains(#"data-field="depth">1<"#))
            server.stop()
            let during = try await client.get("/ui")
            #expect(during.status == .serviceUnavailable && during.headers[.contentType] == "text/html; charset=utf-8")
            #expect(during.text.contains(#"data-banner="outage""#) && during.text.contains("Cannot read the data now: "))
            #expect(during.text.contains(#"<tr data-level="gold">"#) && during.text.contains(#"data-field="depth">1<"#), "the last reading")
            #expect(!during.text.contains("Cannot show this page"))
            let never = try await client.get("/ui/waiting")
            #expect(never.status == .serviceUnavailable && never.text.contains(#"data-banner="outage""#)
                    && never.text.contains("nothing was read since this API process started") && never.text.contains("Nothing read yet"))
            try server.start()
            var back = try await client.get("/ui")
            for _ in 0..<100 where back.status != .ok {
                try await Task.sleep(for: .milliseconds(50))
                back = try await client.get("/ui")
            }
            #expect(back.status == .ok && !back.text.contains(#"data-banner="outage""#))
        }
    }

    @Test func readinessIs503WhenRedisDoesNotAnswer() async throws {
        let port = try freeLoopbackPort()
        let api = try APIFixture(redisURL: try RedisURL(parsing: "redis://127.0.0.1:\(port)/0", setting: "test"))
        defer { api.tearDown() }
        try await api.test { client in
            let answer = try await client.get("/readyz")
            #expect(answer.status == .serviceUnavailable && (answer.json?["redis"] as? String)?.hasPrefix("unreachable") == true)
            #expect(answer.json?["database"] as? String == "ok")
        }
    }
}
