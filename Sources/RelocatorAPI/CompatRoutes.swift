import Hummingbird
import JobQueue
import RelocatorCore

/// The original Flask system's two routes, answering as it did.
struct CompatRoutes: Sendable {
    let service: RelocationService
    let maxBody: Int

    func register(_ routes: RouteRegistry) {
        routes.post("post_sentence") { request, _ in try await postSentence(request) }
        routes.post("update_sentence") { request, _ in try await updateSentence(request) }
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
    static func compatBody(cid: Int64, count: Int64, filename: String, target: String, job: Job?) -> ByteBuffer {
        var pairs: [(String, CompatJSON.Value)] = [
            ("cid", .string(String(cid))), ("count", .string(String(count))),
            // No job: the file is already on the target level.
            ("target", .string(job?.target ?? target)), ("db_level", .string(job?.dbLevel ?? target)),
            ("filename", .string(filename)), ("worker_id", job?.workerID.map { .string($0) } ?? .null),
            ("status", .string(job?.status.compatName ?? JobQueue.SubmitOutcome.inPlace.rawValue)),
        ]
        if let next = job?.nextTarget { pairs.append(("next_target", .string(next))) }
        return CompatJSON.python(pairs)
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
