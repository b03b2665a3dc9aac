import Foundation
import Hummingbird
import RelocatorCore
import Testing
@testable import RelocatorAPI

/// The hot routes' fast paths give what the general ones give: the form read by hand is what
/// `URLEncodedFormDecoder` reads, `{"count": N}` what `JSONDecoder` reads, the answers of
/// `/v1/contents/{cid}/count` the bytes of `RelocatorJSON`, `/post_sentence`'s those of
/// `CompatJSON.python`. Anything unusual is left to the general path.
@Suite struct FastPathTests {
    func plainForm(_ body: String) -> SentenceForm? {
        Array(body.utf8).withUnsafeBytes { SentenceForm.plainDigits($0) }
    }

    func decoded(_ body: String) throws -> SentenceForm {
        try URLEncodedFormDecoder().decode(SentenceForm.self, from: body)
    }

    @Test func theUsualFormIsReadAsTheDecoderReadsIt() throws {
        for body in ["cid=7&count=1964", "count=0&cid=1", "cid=007&count=99999999999999999999999", "cid=9223372036854775807&count=0"] {
            let fast = try #require(plainForm(body), "\(body)")
            let general = try decoded(body)
            #expect(fast.cid == general.cid && fast.count == general.count, "\(body)")
        }
    }

    @Test func anyOtherFormIsLeftToTheDecoder() {
        for body in ["", "cid=7", "count=1", "cid=7&count=1&", "cid=7&&count=1", "cid=&count=1", "cid=7&count=", "cid=7&cid=8&count=1",
                     "cid=7&count=1&x=2", "cid=%37&count=1", "cid=+7&count=1", "cid=7 &count=1", "cid=-7&count=1", "cid7&count=1",
                     "CID=7&count=1", "cid=7;count=1", "cid=7&count=1=2"] {
            #expect(plainForm(body) == nil, "\(body)")
        }
    }

    func plainCount(_ body: String) -> Int64? {
        Array(body.utf8).withUnsafeBytes { CountBody.plain($0) }
    }

    @Test func theUsualCountBodyIsReadAsJSONDecoderReadsIt() throws {
        for body in [#"{"count": 1964}"#, #"{"count":0}"#, " {\n\t\"count\" :\r 123456789012345678 } \n"] {
            let fast = try #require(plainCount(body), "\(body)")
            #expect(fast == (try JSONDecoder().decode(CountBody.self, from: Data(body.utf8))).count, "\(body)")
        }
    }

    @Test func anyOtherCountBodyIsLeftToJSONDecoder() {
        for body in ["", "{}", #"{"count": 01}"#, #"{"count": -1}"#, #"{"count": 1.5}"#, #"{"count": 1e3}"#, #"{"count": "5"}"#,
                     #"{"count": 1234567890123456789}"#, #"{"count": 99999999999999999999999999}"#, #"{"count": 1, "count": 2}"#, #"{"count": 1} x"#, #"{"n": 1}"#,
                     #"{"count": 1,}"#, #"{"count": }"#] {
            #expect(plainCount(body) == nil, "\(body)")
        }
    }

    func encoded(_ value: some Encodable) throws -> String {
        try RelocatorJSON.string(value)
    }

    func jobs() -> [JobView] {
        let awkward = "a/b \"q\" \\ \u{01}\u{08}\u{0C}\n\r\t\u{1F}\u{7F} é 日本 😀 \u{2028}"
        var plain = Job(cid: 7, count: 1964, filename: "g.mp4", dbLevel: "bronze", target: "silver", status: .queued,
                        gen: 3, enqueuedAt: 1_795_815_235_123, updatedAt: 1_795_815_235_999)
        var full = plain
        full.status = .retrying
        full.attempts = 2
        full.workerID = "ssd-1:\(awkward)"
        full.lastError = awkward
        full.reason = "no_space"
        full.earlierError = "earlier"
        full.checksum = "xxh128:00ff"
        full.bytes = 1 << 40
        full.startedAt = 86_399_999
        full.nextTarget = "gold"
        full.part = ".x.part"
        full.stage = .sourceRemoved
        full.bytesDone = 5
        full.bytesTotal = 9
        full.deferReason = awkward
        full.dueAt = 253_402_300_799_999
        full.filename = awkward
        full.queuedBy = QueuedBy(who: "POST /post_sentence", rule: awkward)
        full.nextQueuedBy = QueuedBy(stored: awkward)
        plain.bytesDone = nil
        return [JobView(plain), JobView(full, nextRetryAt: Timestamp(milliseconds: 1)), JobView(full, nextRetryAt: nil)]
    }

    @Test func theCountAnswersAreTheBytesOfTheEncoder() throws {
        for job in jobs() {
            let outcome = "created"
            let fast = String(buffer: CountAnswerJSON.submitted(outcome: outcome, job: job))
            #expect(fast == (try encoded(SubmittedView(outcome: outcome, job: job))))
        }
        #expect(String(buffer: CountAnswerJSON.submitted(outcome: "updated", job: nil)) == (try encoded(SubmittedView(outcome: "updated", job: nil))))
        #expect(String(buffer: CountAnswerJSON.inPlace(cid: 42, level: "gold")) == (try encoded(InPlaceView(cid: 42, level: "gold"))))
    }

    @Test func timesAreWrittenAsRFC3339UTCWithMilliseconds() {
        #expect(Timestamp(milliseconds: 0).description == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(milliseconds: 951_782_400_007).description == "2000-02-29T00:00:00.007Z")
        #expect(Timestamp(milliseconds: 253_402_300_799_999).description == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp(milliseconds: -1).description == "1969-12-31T23:59:59.999Z")
    }

    @Test func thePostSentenceAnswerIsWhatCompatJSONWritesForItsPairs() {
        let awkward = "日本 \"q\" \\ \u{01}😀"
        var moving = Job(cid: 7, count: 1964, filename: awkward, dbLevel: "bronze", target: "silver", status: .moving,
                         workerID: "ssd-1", gen: 1, enqueuedAt: 1, updatedAt: 1)
        moving.nextTarget = "gold"
        let queued = Job(cid: 7, count: 1964, filename: "g.mp4", dbLevel: "bronze", target: "silver", status: .queued,
                         gen: 1, enqueuedAt: 1, updatedAt: 1)
        for (filename, target, job) in [("g.mp4", "silver", Optional(queued)), (awkward, "gold", Optional(moving)), ("g.mp4", "bronze", nil)] {
            var pairs: [(String, CompatJSON.Value)] = [
                ("cid", .string("7")), ("count", .string("1964")),
                ("target", .string(job?.target ?? target)), ("db_level", .string(job?.dbLevel ?? target)),
                ("filename", .string(filename)), ("worker_id", job?.workerID.map { .string($0) } ?? .null),
                ("status", .string(job?.status.compatName ?? "in_place")),
            ]
            if let next = job?.nextTarget { pairs.append(("next_target", .string(next))) }
            let fast = CompatRoutes.compatBody(cid: 7, count: 1964, filename: filename, target: target, job: job)
            #expect(String(buffer: fast) == String(buffer: CompatJSON.python(pairs)))
        }
    }
}
