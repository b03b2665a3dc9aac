import Hummingbird
import JobQueue
import RelocatorCore

/// The original Flask system's two routes, answering as it did.
struct CompatRoutes: Sendable {
    let service: RelocationService
    let maxBody: Int

    func register(_ routes: RouteRegistry) {
        routes.post("post_sentence", scope: .submit) { request, _ in try await postSentence(request) }
        routes.post("update_sentence", scope: .submit) { request, _ in try await updateSentence(request) }
    }

    /// Form `cid`, `count` → the original's JSON, byte for byte as Python's `json.dumps` wrote it:
    /// every value a string, `worker_id` null until a worker takes the job, `status` `update`
    /// while queued, `in_place` when the file is already on that level.
    func postSentence(_ request: Request) async throws -> Response {
        let form = try await SentenceForm.decode(request, maxBytes: maxBody)
        let cid = try FormRules.cid(form.cid)
        let count = try FormRules.count(form.count)
        let submitted = try await service.submit(cid: cid, count: count)
        let body = Self.compatBody(cid: cid, count: count, filename: submitted.content.filename, target: submitted.target,
                                   job: submitted.submission.job)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }

    /// `{"cid": "7", "count": "1964", "target": "silver", "db_level": "bronze", "filename": "g.mp4", "worker_id": null, "status": "update"}`
    /// (and `next_target` last, when a move in flight has a follow-up — the original had none).
    /// Written straight into the buffer (the same bytes as `CompatJSON.python` of these pairs,
    /// without building the pairs on every request).
    static func compatBody(cid: Int64, count: Int64, filename: String, target: String, job: Job?) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 160 + filename.utf8.count)
        buffer.writeStaticString("{\"cid\": \"")
        buffer.writeString(String(cid))
        buffer.writeStaticString("\", \"count\": \"")
        buffer.writeString(String(count))
        buffer.writeStaticString("\", \"target\": ")
        // No job: the file is already on the target level.
        CompatJSON.writeString(job?.target ?? target, asciiOnly: true, to: &buffer)
        buffer.writeStaticString(", \"db_level\": ")
        CompatJSON.writeString(job?.dbLevel ?? target, asciiOnly: true, to: &buffer)
        buffer.writeStaticString(", \"filename\": ")
        CompatJSON.writeString(filename, asciiOnly: true, to: &buffer)
        buffer.writeStaticString(", \"worker_id\": ")
        if let worker = job?.workerID {
            CompatJSON.writeString(worker, asciiOnly: true, to: &buffer)
        } else {
            buffer.writeStaticString("null")
        }
        buffer.writeStaticString(", \"status\": ")
        CompatJSON.writeString(job?.status.compatName ?? JobQueue.SubmitOutcome.inPlace.rawValue, asciiOnly: true, to: &buffer)
        if let next = job?.nextTarget {
            buffer.writeStaticString(", \"next_target\": ")
            CompatJSON.writeString(next, asciiOnly: true, to: &buffer)
        }
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// Form `cid` → the cid as text once its job is done (committed now) or committed; otherwise
    /// (queued, moving, retrying, deferred, dead, no job) `check your status again`.
    func updateSentence(_ request: Request) async throws -> Response {
        let form = try await SentenceForm.decode(request, maxBytes: maxBody)
        let cid = try FormRules.cid(form.cid)
        let text = try await service.commitIfDone(cid: cid) ? String(cid) : "check your status again"
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
