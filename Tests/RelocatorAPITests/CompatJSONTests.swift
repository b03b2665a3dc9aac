import Hummingbird
import RelocatorCore
import Testing
@testable import RelocatorAPI

/// The original `/post_sentence` answer, byte for byte as Python's `json.dumps` of the Flask
/// app's dict (insertion order, `", "` and `": "`, `ensure_ascii` escapes).
@Suite struct CompatJSONTests {
    func body(cid: Int64 = 7, count: Int64 = 1964, filename: String = "g.mp4", target: String = "silver", job: Job?) -> String {
        String(buffer: CompatRoutes.compatBody(cid: cid, count: count, filename: filename, target: target, job: job))
    }

    func job(filename: String = "g.mp4", status: JobStatus = .queued, worker: String? = nil) -> Job {
        Job(cid: 7, count: 1964, filename: filename, dbLevel: "bronze", target: "silver", status: status, workerID: worker,
            gen: 1, enqueuedAt: 1, updatedAt: 1)
    }

    @Test func aQueuedJobAnswersTheOriginalsBytes() {
        #expect(body(job: job()) == #"{"cid": "7", "count": "1964", "target": "silver", "db_level": "bronze", "filename": "g.mp4", "worker_id": null, "status": "update"}"#)
    }

    @Test func aMovingJobNamesItsWorkerAndAFileInPlaceSaysSo() {
        #expect(body(job: job(status: .moving, worker: "ssd-1")).hasSuffix(#""worker_id": "ssd-1", "status": "moving"}"#))
        #expect(body(target: "bronze", job: nil) == #"{"cid": "7", "count": "1964", "target": "bronze", "db_level": "bronze", "filename": "g.mp4", "worker_id": null, "status": "in_place"}"#)
    }

    @Test func nonASCIIIsEscapedAsPythonDoes() {
        // json.dumps("日本語 é \"q\" \\ \t😀\u{7f}") in Python 3.
        let name = "日本語 é \"q\" \\ \t😀\u{7f}"
        let text = body(filename: name, job: job(filename: name))
        #expect(text.contains(#""filename": "\u65e5\u672c\u8a9e \u00e9 \"q\" \\ \t\ud83d\ude00\u007f""#))
        #expect(text.utf8.allSatisfy { $0 < 0x80 })
    }

    @Test func errorBodiesAreCompactJSONWithTheCodeAndMessage() {
        let response = APIError(.badRequest, "count must be \"whole\" é").response()
        #expect(response.status == .badRequest)
        #expect(response.headers[.contentType] == "application/json")
    }
}
