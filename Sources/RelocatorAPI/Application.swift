import Foundation
import Hummingbird
import JobQueue
import Logging
import RelocatorCore
import SQLStore

/// Settings of the HTTP API.
public struct APIConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// When set, every mutating route needs `Authorization: Bearer <token>`.
    public var token: String?
    /// Largest request body accepted.
    public var maxBodyBytes: Int

    public init(host: String = "127.0.0.1", port: Int = 8080, token: String? = nil, maxBodyBytes: Int = 64 * 1024) {
        self.host = host
        self.port = port
        self.token = token
        self.maxBodyBytes = maxBodyBytes
    }
}

/// The HTTP API: the original's two routes and the `/v1` routes. Tests and `relocator serve` both
/// call this.
public func buildApplication(service: RelocationService, configuration: APIConfiguration, logger: Logger,
                             onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
    let router = Router()
    router.add(middleware: ErrorMiddleware(logger: logger, maxBody: configuration.maxBodyBytes))
    if let token = configuration.token, !token.isEmpty {
        router.add(middleware: TokenMiddleware(token: token))
    }
    Routes(service: service, maxBody: configuration.maxBodyBytes).register(on: router)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "relocator"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger
    )
}

struct Routes: Sendable {
    let service: RelocationService
    let maxBody: Int

    func register(on router: Router<BasicRequestContext>) {
        router.post("post_sentence") { request, _ in try await postSentence(request) }
        router.post("update_sentence") { request, _ in try await updateSentence(request) }
        router.post("v1/contents/:cid/count") { request, context in try await postCount(request, context) }
        router.get("v1/contents/:cid") { _, context in try await getContent(context) }
        router.get("v1/jobs/:cid") { _, context in try await getJob(context) }
        router.get("v1/queues") { _, _ in try await getQueues() }
        router.get("v1/dead") { _, _ in try await getDead() }
        router.post("v1/dead/replay") { request, _ in try await replayDead(request) }
        router.get("healthz") { _, _ in JSONBody.response(200, ["status": "ok"]) }
        router.get("readyz") { _, _ in await ready() }
    }

    // MARK: The original system's routes

    /// Form `cid`, `count` → the original's JSON: every value a string, `worker_id` null until a
    /// worker takes the job, `status` `update` while queued.
    func postSentence(_ request: Request) async throws -> Response {
        let form = try await FormBody.parse(request, maxBytes: maxBody)
        let cid = try form.int("cid", minimum: 1)
        let count = try form.int("count", minimum: 0)
        let submitted = try await service.submit(cid: cid, count: count)
        let job = submitted.submission.job
        var body: [String: Any] = [
            "cid": String(cid), "count": String(count), "filename": submitted.content.filename,
            // No job: the file is already on the target level.
            "db_level": job?.dbLevel ?? submitted.target, "target": job?.target ?? submitted.target,
            "worker_id": job?.workerID ?? NSNull(),
            "status": job?.status.compatName ?? JobQueue.SubmitOutcome.inPlace.rawValue,
        ]
        if let next = job?.nextTarget { body["next_target"] = next }
        return JSONBody.response(200, body)
    }

    /// Form `cid` → the cid as text once its job is done (committed now) or committed; otherwise
    /// `check your status again`.
    func updateSentence(_ request: Request) async throws -> Response {
        let form = try await FormBody.parse(request, maxBytes: maxBody)
        let cid = try form.int("cid", minimum: 1)
        let text = try await service.commitIfDone(cid: cid) ? String(cid) : "check your status again"
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: /v1

    func postCount(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let cid = try pathCID(context)
        struct Body: Decodable { var count: Int64 }
        let count = try await JSONBody.decode(Body.self, request, maxBytes: maxBody,
                                              expected: "{\"count\": N} with N a whole number ≥ 0").count
        let submitted = try await service.submit(cid: cid, count: count)
        switch submitted.submission.outcome {
        case .inPlace, .dropped:
            return JSONBody.response(200, ["status": "in_place", "cid": cid, "level": submitted.target])
        default:
            return JSONBody.response(202, ["outcome": submitted.submission.outcome.rawValue, "job": submitted.submission.fields])
        }
    }

    func getContent(_ context: BasicRequestContext) async throws -> Response {
        let cid = try pathCID(context)
        let (content, fields) = try await service.content(cid: cid)
        return JSONBody.response(200, [
            "cid": content.cid, "filename": content.filename, "content_level": content.level,
            "update_time": content.updateTime ?? NSNull(), "job": fields.isEmpty ? NSNull() : fields,
        ])
    }

    func getJob(_ context: BasicRequestContext) async throws -> Response {
        JSONBody.response(200, try await service.jobFields(cid: try pathCID(context)))
    }

    func getQueues() async throws -> Response {
        JSONBody.response(200, try await service.stats().json)
    }

    func getDead() async throws -> Response {
        let dead = try await service.deadJobs()
        return JSONBody.response(200, ["dead": dead.map { $0.job?.summary ?? ["id": $0.id] }])
    }

    func replayDead(_ request: Request) async throws -> Response {
        struct Body: Decodable {
            var cids: [Int64]?
            var all: Bool?
        }
        let expected = "{\"cids\": [1, 2]} or {\"all\": true}"
        let body = try await JSONBody.decode(Body.self, request, maxBytes: maxBody, expected: expected)
        let cids: [Int64]?
        switch (body.cids, body.all) {
        case (nil, true?): cids = nil
        case (let list?, nil), (let list?, false?):
            guard list.allSatisfy({ $0 > 0 }) else { throw ServiceError.badRequest("\"cids\" must be positive whole numbers") }
            cids = list
        default: throw ServiceError.badRequest("send \(expected)")
        }
        let replayed = try await service.dead(.replay, cids: cids).filter { $0.outcome == .replayed }.map(\.id)
        return JSONBody.response(200, ["replayed": replayed])
    }

    func ready() async -> Response {
        let (redis, database) = await service.readiness()
        return JSONBody.response(redis && database ? 200 : 503, [
            "status": redis && database ? "ready" : "unavailable",
            "redis": redis ? "ok" : "unreachable", "database": database ? "ok" : "unreachable",
        ])
    }

    func pathCID(_ context: BasicRequestContext) throws -> Int64 {
        let text = context.parameters.get("cid") ?? ""
        guard let cid = Int64(text), cid > 0 else {
            throw ServiceError.badRequest("cid must be a positive whole number, got '\(text.prefix(64))'")
        }
        return cid
    }
}

extension Job {
    /// What `dlq list` and `/v1/dead` show of a dead job.
    public var summary: [String: Any] {
        [
            "id": id, "cid": cid, "filename": filename, "from": dbLevel, "to": target, "attempts": attempts,
            "last_error": lastError ?? NSNull(), "updated_at": updatedAt,
        ]
    }
}

extension QueueStats {
    public var json: [String: Any] {
        [
            "queues": Dictionary(levels.map { ($0.name, $0.depth) }, uniquingKeysWith: { a, _ in a }), "processing": processing,
            "committing": committing, "retry": retry, "deferred": deferred, "dead": dead, "done": done,
            "workers": workers.count, "workers_alive": workers.filter(\.alive).count,
        ]
    }
}
