@testable import JobQueue
import RedisClient
import RelocatorCore
import Testing

/// A job read straight from a flat reply (`JobQueue.job(fromFlat:)`, what a submission's answer is
/// read with) is the job `Job(hash:)` reads from the same reply's dictionary.
@Suite struct JobFieldValuesTests {
    private func flat(_ pairs: [(String, RedisReply)]) -> RedisReply {
        .array(pairs.flatMap { [RedisReply.bulk(Array($0.0.utf8)), $0.1] })
    }

    private func text(_ value: String) -> RedisReply { .bulk(Array(value.utf8)) }

    @Test func ordinalsAreThePlacesInAllCasesAndNamesFollowThem() {
        for (index, field) in JobField.allCases.enumerated() {
            #expect(field.ordinal == index)
            #expect(JobField.names[index] == Array(field.rawValue.utf8))
        }
    }

    @Test func everyFieldReadsAsTheHashReadsIt() throws {
        let values: [JobField: String] = [
            .cid: "7", .count: "1964", .filename: "g.mp4", .dbLevel: "bronze", .target: "silver", .status: "moving", .attempts: "2",
            .workerID: "w1", .lastError: "e", .reason: "no_space", .earlierError: "x", .checksum: "xxh128:00", .bytes: "10",
            .gen: "3", .enqueuedAt: "100", .updatedAt: "200", .startedAt: "150", .nextTarget: "gold", .part: ".p", .stage: "copying",
            .bytesDone: "5", .bytesTotal: "10", .verified: "4", .transferKey: "1:ab", .sourceVersion: "v", .pulledFrom: "a\nb:1\nc",
            .deferReason: "r", .dueAt: "300", .token: "9", .fence: "8", .queuedBy: "POST /post_sentence\ncount 1964 falls in silver",
            .nextQueuedBy: "someone\nrule", .countedAt: "12345",
        ]
        #expect(values.count == JobField.allCases.count)
        let reply = flat(JobField.allCases.map { ($0.rawValue, text(values[$0]!)) })
        let read = try #require(JobQueue.job(fromFlat: reply))
        #expect(read == Job(hash: try #require(reply.hash)))
        #expect(read.cid == 7 && read.workerID == "w1" && read.pulledFrom?.targetHost == "c" && read.nextQueuedBy?.who == "someone")
    }

    @Test func repeatedUnknownEmptyAndNonTextFieldsAreReadAsTheHashReadsThem() throws {
        let reply = flat([
            ("cid", text("7")), ("gen", text("1")), ("status", text("queued")), ("filename", text("a")), ("db_level", text("bronze")),
            ("target", text("gold")), ("target", text("silver")),  // the last one counts
            ("colour", text("blue")),  // not a job field
            ("worker_id", text("")),  // empty: absent
            ("next_target", .integer(4)),  // not text: skipped
            ("count", .status("12")),
        ])
        let read = try #require(JobQueue.job(fromFlat: reply))
        #expect(read == Job(hash: try #require(reply.hash)))
        #expect(read.target == "silver" && read.workerID == nil && read.nextTarget == nil && read.count == 12)
    }

    @Test func aReplyThatHoldsNoJobReadsAsNone() {
        #expect(JobQueue.job(fromFlat: .array([])) == nil)
        #expect(JobQueue.job(fromFlat: .null) == nil)
        #expect(JobQueue.job(fromFlat: .array([text("cid")])) == nil)  // odd: not pairs
        #expect(JobQueue.job(fromFlat: flat([("cid", text("7")), ("status", text("queued"))])) == nil)  // no gen
        #expect(JobQueue.job(fromFlat: flat([("cid", text("7")), ("gen", text("x")), ("status", text("queued")), ("filename", text("a")),
                                            ("db_level", text("b")), ("target", text("g"))])) == nil)  // malformed gen
    }

    /// The enqueue script's answer, read as the API reads it, is the job the hash holds.
    @Test func aSubmissionsJobIsTheStoredJob() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        for (count, target) in [(Int64(20000), "gold"), (20001, "gold"), (500, "silver")] {
            let request = SubmitRequest(cid: 9, count: count, filename: "f9", dbLevel: "bronze", target: target, readAt: SubmitRequest.freshRead,
                                        queuedBy: QueuedBy(who: "a test", rule: "count \(count)"))
            let reply = try q.redis.pipeline(calls: [q.queue.submitCall(request)])[0]
            let result = try q.queue.submitResult(from: reply, address: "test")
            let stored = try q.job(9)
            let read = try q.queue.submission(from: reply, address: "test").job
            #expect(result.job != nil && result.job == stored)
            #expect(result.job == read)
        }
    }
}
