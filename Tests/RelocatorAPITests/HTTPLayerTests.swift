import Foundation
import Hummingbird
import HummingbirdTesting
import JobQueue
import RelocatorCore
import Testing
import TestSupport
@testable import RelocatorAPI

/// The HTTP layer through the router (no socket), over the memory queue and store.
@Suite struct HTTPLayerTests {
    @Test func postSentenceAnswersTheOriginalsBytesAndUpdateSentenceWaitsForTheMove() async throws {
        let api = MemoryAPI()
        try api.add([(7, "g.mp4", "bronze"), (8, "日本 ü.mp4", "bronze")])
        try await api.test { client in
            let posted = try await client.postForm("/post_sentence", "cid=7&count=1964")
            #expect(posted.status == .ok && posted.headers[.contentType] == "application/json")
            #expect(posted.text == #"{"cid": "7", "count": "1964", "target": "silver", "db_level": "bronze", "filename": "g.mp4", "worker_id": null, "status": "update"}"#)
            let unicode = try await client.postForm("/post_sentence", "cid=8&count=20000")
            #expect(unicode.text.contains(#""filename": "\u65e5\u672c \u00fc.mp4""#))
            #expect(try await client.postForm("/update_sentence", "cid=7").text == "check your status again")
        }
        // A job that dies is not done either.
        let job = try #require(try api.claim())
        try api.kill(job)
        try await api.test { client in
            let answer = try await client.postForm("/update_sentence", "cid=\(job.job.cid)")
            #expect(answer.text == "check your status again")
        }
    }

    @Test func aWrongMethodIsA405WithAllowAndAMissingTokenA401WithWWWAuthenticate() async throws {
        let api = MemoryAPI()
        api.configuration.withLock { $0.token = "s3cret" }
        try await api.test { client in
            let wrong = try await client.get("/post_sentence")
            #expect(wrong.status == .methodNotAllowed && wrong.headers[.allow] == "POST")
            #expect(wrong.json?["error"] as? String == "method_not_allowed")
            let deleted = try await client.execute(uri: "/v1/contents/5", method: .delete)
            #expect(deleted.status == .methodNotAllowed && deleted.headers[.allow] == "GET")
            let refused = try await client.postForm("/post_sentence", "cid=7&count=1")
            #expect(refused.status == .unauthorized && refused.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            #expect(refused.json?["error"] as? String == "unauthorized")
            let unknown = try await client.get("/no/such/route")
            #expect(unknown.status == .notFound && unknown.json?["message"] as? String == "no route GET /no/such/route")
        }
    }

    @Test func badInputIsA4xxNamingTheFieldAndTheRange() async throws {
        let api = MemoryAPI()
        try api.add([(1, "a.mp4", "bronze")])
        try await api.test { client in
            func expect(_ response: TestResponse, _ status: HTTPResponse.Status, _ code: String, _ fragment: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
                #expect(response.status == status, "\(response.text)", sourceLocation: sourceLocation)
                #expect(response.json?["error"] as? String == code, "\(response.text)", sourceLocation: sourceLocation)
                #expect((response.json?["message"] as? String)?.contains(fragment) == true, "\(response.text)", sourceLocation: sourceLocation)
            }
            let range = "count must be a whole number between 0 and 9007199254740991 (2^53 − 1"
            expect(try await client.postForm("/post_sentence", "cid=1&count=9223372036854775808"), .badRequest, "bad_request", range)
            expect(try await client.postJSON("/v1/contents/1/count", #"{"count": 9223372036854775808}"#), .badRequest, "bad_request", range)
            // Past the bound, but inside 64 bits: refused the same way, naming the bound.
            expect(try await client.postForm("/post_sentence", "cid=1&count=9223372036854775807"), .badRequest, "bad_request", range)
            expect(try await client.postJSON("/v1/contents/1/count", #"{"count": 9007199254740992}"#), .badRequest, "bad_request", range)
            expect(try await client.postJSON("/v1/contents/1/count", #"{"count": 999999999999999999}"#), .badRequest, "bad_request", range)
            expect(try await client.postJSON("/v1/contents/1/count", #"{"count": -1}"#), .badRequest, "bad_request", range)
            expect(try await client.postJSON("/v1/contents/1/count", #"{"count": 1.5}"#), .badRequest, "bad_request", "fraction")
            expect(try await client.postJSON("/v1/contents/1/count", #"{"count": "many"}"#), .badRequest, "bad_request", "whole number")
            // A field given twice, also when one is spelt with escapes or inside a nested object.
            expect(try await client.postJSON("/v1/contents/1/count", #"{"count": 50, "count": 5000}"#), .badRequest, "bad_request", "'count' more than once")
            expect(try await client.postJSON("/v1/contents/1/count", #"{"count": 50, "\u0063ount": 5000}"#), .badRequest, "bad_request",
                   "'count' more than once")
            expect(try await client.postJSON("/v1/contents/1/hits", #"{"n": 1, "x": {"a": [{"b": 1, "b": 2}]}}"#), .badRequest, "bad_request",
                   "'b' more than once")
            // Two spellings of one character are two keys to JSON: not a field given twice.
            // (Refused here for another reason: hits need a half-life on this API.)
            let twoSpellings = try await client.postJSON("/v1/contents/1/hits", "{\"n\": 1, \"caf\u{E9}\": 1, \"cafe\u{301}\": 2}")
            let message = twoSpellings.json?["message"] as? String ?? ""
            #expect(message.contains("RELOCATOR_HALF_LIFE") && !message.contains("more than once"), "\(message)")
            expect(try await client.postForm("/post_sentence", "count=5"), .badRequest, "bad_request", "'cid' is missing")
            expect(try await client.postForm("/post_sentence", "cid=1&cid=2&count=5"), .badRequest, "bad_request", "'cid' more than once")
            expect(try await client.postForm("/post_sentence", "cid=%zz&count=5"), .badRequest, "bad_request", "URL encoding")
            expect(try await client.postForm("/post_sentence", "cid=999&count=5"), .notFound, "unknown_cid", "999")
            expect(try await client.execute(uri: "/post_sentence", method: .post, headers: [.contentType: "multipart/form-data; boundary=x"],
                                            body: ByteBuffer(string: "--x\r\n")), .unsupportedMediaType, "unsupported_media_type", "urlencoded")
            expect(try await client.postForm("/post_sentence", "cid=1&count=" + String(repeating: "9", count: 70_000)),
                   .contentTooLarge, "payload_too_large", "65536 bytes")
            expect(try await client.get("/v1/jobs/abc"), .badRequest, "bad_request", "cid must be a whole number")
            expect(try await client.get("/v1/jobs/1"), .notFound, "no_job", "cid 1")
        }
        #expect(try api.queue.stats(levels: ["bronze", "silver", "gold"]).inFlight == 0)
    }

    /// A row naming a file inside the reserved directory (written by an older version, or by hand)
    /// is never queued: no content may live where the temporary files are.
    @Test func aFilenameInsideTheReservedDirectoryIsRefusedAtEnqueue() async throws {
        let api = MemoryAPI()
        try api.add([(1, ".relocator/tmp/1-1.part", "bronze")])
        try await api.test { client in
            let refused = try await client.postForm("/post_sentence", "cid=1&count=5000")
            #expect(refused.status == .unprocessableContent && refused.json?["error"] as? String == "invalid_filename", "\(refused.text)")
            #expect(refused.text.contains(".relocator/"), "\(refused.text)")
        }
    }

    @Test func aSymlinkOnTheWayIsRefusedAtEnqueueByTheMoversLookup() async throws {
        let levels = try TemporaryDirectory("relocator-levels")
        defer { levels.remove() }
        let outside = try TemporaryDirectory("relocator-outside")
        defer { outside.remove() }
        try FileManager.default.createDirectory(atPath: levels.path + "/bronze/ok", withIntermediateDirectories: true)
        let api = MemoryAPI(directories: LevelDirectories([("bronze", levels.path + "/bronze")]))
        try Data("secret".utf8).write(to: URL(fileURLWithPath: outside.path + "/secret"))
        try Data(count: 5).write(to: URL(fileURLWithPath: levels.path + "/bronze/ok/real.mp4"))
        try api.add([(1, "via/secret", "bronze"), (2, "ok/real.mp4", "bronze")])
        try FileManager.default.createSymbolicLink(atPath: levels.path + "/bronze/via", withDestinationPath: outside.path)
        try await api.test { client in
            let refused = try await client.postForm("/post_sentence", "cid=1&count=5000")
            #expect(refused.status == .unprocessableContent && refused.json?["error"] as? String == "invalid_filename", "\(refused.text)")
            #expect(try await client.postForm("/post_sentence", "cid=2&count=5000").status == .ok)
        }
    }
}
