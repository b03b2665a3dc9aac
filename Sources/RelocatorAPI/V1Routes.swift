import RelocatorApp
import Foundation
import Hummingbird
import RelocatorCore

/// The `/v1` routes: counts, contents, jobs, why, queues, dead letters, levels, relocations.
struct V1Routes: Sendable {
    let service: App
    let maxBody: Int

    func register(_ routes: RouteRegistry) {
        routes.post("v1/contents/:cid/count", scope: .submit) { request, context in try await postCount(request, context) }
        routes.post("v1/contents/:cid/hits", scope: .submit) { request, context in try await postHits(request, context) }
        routes.get("v1/contents/:cid") { _, context in
            let cid = try Self.pathCID(context)
            let content = try await service.content(cid: cid)
            return try json(ContentView(content: content, job: try await service.job(cid: cid).map { JobView($0.job, nextRetryAt: Timestamp(milliseconds: $0.nextRetryAt), showsPull: true) }))
        }
        routes.get("v1/contents/:cid/why") { _, context in try json(WhyReport(try await service.why(cid: try Self.pathCID(context)))) }
        routes.get("v1/jobs/:cid") { _, context in
            let cid = try Self.pathCID(context)
            guard let found = try await service.job(cid: cid) else { throw APIError.noJob(cid) }
            return try json(JobView(found.job, nextRetryAt: Timestamp(milliseconds: found.nextRetryAt), showsPull: true))
        }
        routes.get("v1/queues") { _, _ in try json(QueuesView(try await service.stats(), now: service.clock())) }
        routes.get("v1/dead") { request, _ in
            let request = try PageParameters.from(request)
            let page = try await service.deadPage(request)
            return try json(PageView(name: "dead", items: page.items.map { DeadJobView($0) }, total: page.total, limit: request.limit, next: page.next))
        }
        routes.get("v1/retrying") { request, _ in try await scheduled(.retry, "retrying", request) }
        routes.get("v1/deferred") { request, _ in try await scheduled(.deferred, "deferred", request) }
        routes.post("v1/dead/replay", scope: .admin) { request, _ in try await deadAction(.replay, request) }
        routes.post("v1/dead/purge", scope: .admin) { request, _ in try await deadAction(.purge, request) }
        routes.get("v1/levels") { _, _ in try json(LevelsView(levels: try await service.levelTable().ranges)) }
        routes.post("v1/levels/:level/pause", scope: .admin) { _, context in try await setPaused(true, context) }
        routes.post("v1/levels/:level/resume", scope: .admin) { _, context in try await setPaused(false, context) }
        routes.get("v1/relocations") { request, _ in
            let cid = try request.uri.queryParameters.get("cid").map { try FormRules.wholeNumber($0, field: "cid", minimum: 1) }
            let pageRequest = try PageParameters.from(request)
            let page = try await service.relocationsPage(cid: cid, pageRequest)
            return try json(PageView(name: "relocations", items: page.items, total: page.total, limit: pageRequest.limit, next: page.next))
        }
    }

    /// `/v1/retrying`, `/v1/deferred`: a page of the jobs waiting in that set, soonest due first.
    func scheduled(_ schedule: Schedule, _ name: String, _ request: Request) async throws -> Response {
        let pageRequest = try PageParameters.from(request)
        let page = try await service.scheduledPage(schedule, pageRequest)
        return try json(PageView(name: name, items: page.items.map(ScheduledJobView.init), total: page.total, limit: pageRequest.limit,
                                 next: page.next))
    }

    func postCount(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let cid = try Self.pathCID(context)
        let count = try await Self.countBody(request, maxBytes: maxBody)
        let submitted = try await service.submit(cid: cid, count: count, from: .countRoute)
        // The answers are written by `CountAnswerJSON`, with the bytes `json(_:)` would give.
        switch submitted.result.outcome {
        case .inPlace, .dropped:
            return Self.jsonResponse(CountAnswerJSON.inPlace(cid: cid, level: submitted.target), status: .ok)
        case .created, .updated, .retargeted, .reversed, .requeued, .followUp:
            let body = CountAnswerJSON.submitted(outcome: submitted.result.outcome.rawValue, job: submitted.result.job.map { JobView($0) })
            return Self.jsonResponse(body, status: .accepted)
        case .staleLevel:
            // The service reads the level again and resubmits; a second change meanwhile is rare.
            throw APIError(.unavailable, "the content of cid \(cid) changed level while the count was submitted; send it again")
        }
    }

    /// Hits for a content: its decaying counter grows by `n`; the counter's value now is the count
    /// placement uses.
    func postHits(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let cid = try Self.pathCID(context)
        let hits = try await Self.decode(HitsBody.self, request, maxBytes: maxBody, expected: HitsBody.expected).n
        let (value, submitted) = try await service.hit(cid: cid, hits: hits, from: .hitsRoute)
        let count = CountBound.clamped(value)
        switch submitted.result.outcome {
        case .inPlace, .dropped:
            return try json(HitsView(count: count, value: value, outcome: "in_place", level: submitted.target, job: nil))
        case .created, .updated, .retargeted, .reversed, .requeued, .followUp:
            return try json(HitsView(count: count, value: value, outcome: submitted.result.outcome.rawValue, level: submitted.target,
                                     job: submitted.result.job.map { JobView($0) }), status: .accepted)
        case .staleLevel:
            throw APIError(.unavailable, "the content of cid \(cid) changed level while the hits were counted; they are counted, send n=0 to place it")
        }
    }

    func deadAction(_ action: DeadAction, _ request: Request) async throws -> Response {
        let body = try await Self.decode(DeadSelection.self, request, maxBytes: maxBody, expected: DeadSelection.expected)
        return try json(DeadActionView(action, try await service.dead(action, cids: try body.selected(), by: "POST /v1/dead/\(action.rawValue)")))
    }

    func setPaused(_ paused: Bool, _ context: APIRequestContext) async throws -> Response {
        let level = context.parameters.get("level") ?? ""
        guard LevelDirectories.isValidName(level) else { throw APIError(.unknownLevel, "level '\(level.prefix(64))' is not in the level table") }
        try await service.setPaused(paused, level: level)
        return try json(PausedView(level: level, paused: paused))
    }

    static func jsonResponse(_ body: ByteBuffer, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }

    static func pathCID(_ context: APIRequestContext) throws -> Int64 {
        let text = context.parameters.get("cid") ?? ""
        guard let cid = Int64(text), cid > 0 else {
            throw APIError.badRequest("cid must be a whole number between 1 and \(Int64.max), got '\(text.prefix(64))'")
        }
        return cid
    }

    /// `{"count": N}`: the usual body read without Foundation; anything else through `decode`.
    /// A count beyond 2^53 − 1 is refused with the bound.
    static func countBody(_ request: Request, maxBytes: Int) async throws -> Int64 {
        let buffer = try await request.body.collect(upTo: maxBytes)
        let count = try buffer.withUnsafeReadableBytes({ CountBody.plain($0) }) ?? decode(CountBody.self, buffer, expected: CountBody.expected).count
        guard count <= CountBound.max else {
            throw APIError.badRequest(FormRules.rangeMessage("count", minimum: 0, maximum: CountBound.max, got: String(count), source: "field"))
        }
        return count
    }

    /// Decodes a JSON body strictly: a string or a fraction where a whole number belongs is refused.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, maxBytes: Int, expected: String) async throws -> T {
        try decode(type, try await request.body.collect(upTo: maxBytes), expected: expected)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ buffer: ByteBuffer, expected: String) throws -> T {
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("the request needs a JSON body: \(expected)") }
        if let key = JSONKeys.repeated(in: buffer.readableBytesView) {
            throw APIError.badRequest("the body has field '\(Shown.text(key.prefix(64)))' more than once: \(expected)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.badRequest("the body must be \(expected)")
        }
    }
}

/// `{"count": N}`: a count too large for 64 bits says so with the range.
struct CountBody: Decodable {
    static let expected = "{\"count\": N} with N a whole number between 0 and \(CountBound.text)"
    var count: Int64

    enum CodingKeys: String, CodingKey { case count }

    /// `{"count": N}` with N a JSON whole number of at most 18 digits (no sign, no leading zero,
    /// no fraction or exponent), JSON whitespace around the tokens; nil for any other body, which
    /// `JSONDecoder` then reads (or refuses with its message).
    static func plain(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var index = 0
        func skipSpace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A || bytes[index] == 0x0D { index += 1 }
        }
        func take(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return false }
            index += count
            return true
        }
        skipSpace()
        guard take("{") else { return nil }
        skipSpace()
        guard take("\"count\"") else { return nil }
        skipSpace()
        guard take(":") else { return nil }
        skipSpace()
        let start = index
        var value: Int64 = 0
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            // More than 18 digits may not fit: the decoder says so.
            guard index - start < 18 else { return nil }
            value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        let digits = index - start
        guard digits >= 1, digits <= 18, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
        skipSpace()
        guard take("}") else { return nil }
        skipSpace()
        return index == bytes.count ? value : nil
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard container.contains(.count) else { throw APIError.badRequest("the body must be \(Self.expected): \"count\" is missing") }
        do {
            count = try container.decode(Int64.self, forKey: .count)
        } catch {
            // Not an Int64: say what it is instead when it is a number at all.
            let number: Double
            do {
                number = try container.decode(Double.self, forKey: .count)
            } catch {
                throw APIError.badRequest(FormRules.rangeMessage("count", minimum: 0, maximum: CountBound.max, got: nil) + " (\"count\" was not a number)")
            }
            throw APIError.badRequest(FormRules.rangeMessage("count", minimum: 0, maximum: CountBound.max, got: nil)
                + (number.rounded() == number ? " (\"count\" was out of range)" : " (\"count\" was a fraction)"))
        }
        guard count >= 0 else {
            throw APIError.badRequest(FormRules.rangeMessage("count", minimum: 0, maximum: CountBound.max, got: String(count), source: "field"))
        }
    }
}

/// `{"n": 1}`: hits to add (default 1).
struct HitsBody: Decodable {
    static let expected = "{\"n\": N} with N a whole number between 0 and 1000000"
    var n: Int64

    enum CodingKeys: String, CodingKey { case n }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard container.contains(.n) else {
            n = 1
            return
        }
        do {
            n = try container.decode(Int64.self, forKey: .n)
        } catch {
            throw APIError.badRequest("the body must be \(Self.expected)")
        }
        guard (0...1_000_000).contains(n) else { throw APIError.badRequest("the body must be \(Self.expected), got \(n)") }
    }
}

/// What a count of hits did: the decayed counter's value, the count placement used, and the job.
struct HitsView: Encodable, Sendable {
    var count: Int64
    var value: Double
    var outcome: String
    var level: String
    var job: JobView?
}

/// `{"cids": [1, 2]}` or `{"all": true}`.
struct DeadSelection: Decodable {
    static let expected = "{\"cids\": [1, 2]} or {\"all\": true}"
    var cids: [Int64]?
    var all: Bool?

    /// The cids to act on; nil for all.
    func selected() throws -> [Int64]? {
        switch (cids, all) {
        case (nil, true?): return nil
        case (let list?, nil), (let list?, false?):
            guard list.allSatisfy({ $0 > 0 }) else { throw APIError.badRequest("\"cids\" must be whole numbers between 1 and \(Int64.max)") }
            return list
        default: throw APIError.badRequest("send \(Self.expected)")
        }
    }
}

struct LevelsView: Encodable, Sendable {
    var levels: [LevelRange]
}

struct PausedView: Encodable, Sendable {
    var level: String
    var paused: Bool
}


