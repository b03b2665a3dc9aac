import Hummingbird
import JobQueue
import RelocatorCore

/// `/ui`: the dashboard's pages, its script and its stylesheet.
struct DashboardRoutes: Sendable {
    let service: RelocationService
    /// True when an administrator credential is set: the pages are read-only until a tab gives it.
    let adminRequired: Bool
    let dashboard: Dashboard?

    init(service: RelocationService, adminRequired: Bool) {
        self.service = service
        self.adminRequired = adminRequired
        do {
            dashboard = try Dashboard()
        } catch {
            // The templates are compiled in and tested; a broken one disables the dashboard, not the API.
            service.logger.error("the dashboard's templates do not parse; /ui is off", metadata: ["error": "\(error)"])
            dashboard = nil
        }
    }

    func register(_ routes: RouteRegistry) {
        guard let dashboard else { return }
        routes.get("ui/dashboard.js") { _, _ in Self.asset(Dashboard.script, "text/javascript; charset=utf-8") }
        routes.get("ui/dashboard.css") { _, _ in Self.asset(Dashboard.stylesheet, "text/css; charset=utf-8") }
        routes.get("ui") { _, _ in try await page(dashboard, "overview") { now in
            let stats = try await service.stats(maxAge: .seconds(1))
            let moves = try await service.movesInFlight(workers: stats.workers.filter(\.alive).map(\.id))
            return OverviewModel(stats: stats, moves: moves, perMinute: service.moveRate.perMinute(at: now))
        } }
        routes.get("ui/workers") { _, _ in try await page(dashboard, "workers") { now in
            let stats = try await service.stats(maxAge: .seconds(1))
            let moves = try await service.movesInFlight(workers: stats.workers.map(\.id))
            return WorkersModel(stats: stats, moves: moves, now: now)
        } }
        routes.get("ui/dead") { _, _ in try await page(dashboard, "dead") { _ in DeadModel(dead: try await service.deadJobs()) } }
        routes.get("ui/relocations") { request, _ in
            let text = request.uri.queryParameters.get("cid") ?? ""
            let cid = text.isEmpty ? nil : try FormRules.wholeNumber(text, field: "cid", minimum: 1)
            return try await page(dashboard, "relocations") { _ in
                RelocationsModel(cid: cid, relocations: try await service.relocations(cid: cid, limit: cid == nil ? 100 : 1000))
            }
        }
        routes.get("ui/levels") { _, _ in try await page(dashboard, "levels") { _ in
            let stats = try await service.stats(maxAge: .seconds(1))
            return LevelsModel(ranges: try await service.levelTable().ranges, paused: Set(stats.levels.filter(\.paused).map(\.name)),
                               directories: service.directories)
        } }
    }

    /// A page; when Redis or the database cannot be read, the page says so (503) instead of JSON.
    func page(_ dashboard: Dashboard, _ name: String, _ model: (Int64) async throws -> Any) async throws -> Response {
        let now = service.clock()
        do {
            return Self.html(dashboard.render(page: name, model: try await model(now), adminRequired: adminRequired, now: now), .ok)
        } catch {
            guard let known = APIError.from(error), known.status.code >= 500 else { throw error }
            struct Message { var message: String }
            return Self.html(dashboard.render(page: "error", model: Message(message: known.message), adminRequired: adminRequired, now: now),
                             known.status)
        }
    }

    static func html(_ text: String, _ status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func asset(_ bytes: [UInt8], _ type: String) -> Response {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: "max-age=300"], body: .init(byteBuffer: buffer))
    }
}
