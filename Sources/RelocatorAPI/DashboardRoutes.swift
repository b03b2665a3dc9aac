import RelocatorApp
import Hummingbird
import JobQueue
import RelocatorCore
import Synchronization

/// `/ui`: the dashboard's pages, its script and its stylesheet.
struct DashboardRoutes: Sendable {
    let service: App
    /// True when an administrator credential is set: the pages are read-only until a tab gives it.
    let adminRequired: Bool
    let dashboard: Dashboard?
    /// Each page's last good reading (by its address): shown under a banner while Redis or the
    /// database cannot be read.
    let lastGood = LastGood()

    /// The model a page last rendered, its banners and when it was read.
    final class LastGood: Sendable {
        struct Reading: Sendable {
            var model: any Sendable
            var banners: [Banner]
            var readAt: Int64
        }

        /// At most this many addresses are kept (a page per cursor would grow it otherwise).
        static let capacity = 64
        private let readings = Mutex<[String: Reading]>([:])

        func keep(_ reading: Reading, for address: String) {
            readings.withLock {
                if $0.count >= Self.capacity, $0[address] == nil { $0.removeAll() }
                $0[address] = reading
            }
        }

        func reading(for address: String) -> Reading? { readings.withLock { $0[address] } }
    }

    init(service: App, adminRequired: Bool) {
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
        routes.get("ui") { request, _ in try await page(dashboard, "overview", request) { _ in
            let stats = try await service.stats(maxAge: .seconds(1))
            let moves = try await service.movesInFlight(workers: stats.workers.filter(\.alive).map(\.id))
            let throughput = try await service.throughput()
            let policies = try await service.placement().policies
            return (OverviewModel(stats: stats, moves: moves, policies: policies,
                                  throughput: ThroughputChart(moved: throughput.moved, committed: throughput.committed)),
                    Banner.from(stats))
        } }
        routes.get("ui/waiting") { request, _ in
            let limit = try PageParameters.from(request).limit
            let query = request.uri.queryParameters
            let deferredCursor = query.get("deferred_cursor").flatMap { $0.isEmpty ? nil : $0 }
            let retryingCursor = query.get("retrying_cursor").flatMap { $0.isEmpty ? nil : $0 }
            return try await page(dashboard, "waiting", request) { now in
                let stats = try await service.stats(maxAge: .seconds(1))
                let deferred = try await service.scheduledPage(.deferred, PageRequest(limit: limit, cursor: deferredCursor))
                let retrying = try await service.scheduledPage(.retry, PageRequest(limit: limit, cursor: retryingCursor))
                return (WaitingModel(deferred: deferred, retrying: retrying, limit: limit, deferredCursor: deferredCursor,
                                     retryingCursor: retryingCursor, now: now), Banner.from(stats))
            }
        }
        routes.get("ui/workers") { request, _ in try await page(dashboard, "workers", request) { now in
            let stats = try await service.stats(maxAge: .seconds(1))
            let moves = try await service.movesInFlight(workers: stats.workers.map(\.id))
            return (WorkersModel(stats: stats, moves: moves, now: now), Banner.from(stats))
        } }
        routes.get("ui/dead") { request, _ in
            let pageRequest = try PageParameters.from(request)
            return try await page(dashboard, "dead", request) { _ in
                let stats = try await service.stats(maxAge: .seconds(1))
                let dead = try await service.deadPage(pageRequest)
                return (DeadModel(page: dead, limit: pageRequest.limit, cursor: pageRequest.cursor), Banner.from(stats))
            }
        }
        routes.get("ui/relocations") { request, _ in
            let text = request.uri.queryParameters.get("cid") ?? ""
            let cid = text.isEmpty ? nil : try FormRules.wholeNumber(text, field: "cid", minimum: 1)
            let pageRequest = try PageParameters.from(request)
            return try await page(dashboard, "relocations", request) { _ in
                let stats = try await service.stats(maxAge: .seconds(1))
                let relocations = try await service.relocationsPage(cid: cid, pageRequest)
                return (RelocationsModel(cid: cid, page: relocations, limit: pageRequest.limit, cursor: pageRequest.cursor), Banner.from(stats))
            }
        }
        routes.get("ui/placement") { request, _ in
            let pageRequest = try PageParameters.from(request)
            var cursor: Int64?
            if let text = pageRequest.cursor {
                guard let value = Int64(text), value > 0 else { throw APIError.badRequest(App.cursorMessage) }
                cursor = value
            }
            return try await page(dashboard, "placement", request) { _ in
                let stats = try await service.stats(maxAge: .seconds(1))
                let plan = try await service.recentPlan()
                let policies = try await service.placement().policies
                let disks = LevelDisk.all(levels: try await service.levelTable().ranges.map(\.name), stats: stats, policies: policies)
                return (PlacementModel(plan: plan, disks: disks, recent: try await service.recentMoves(), limit: pageRequest.limit, cursor: cursor),
                        Banner.from(stats))
            }
        }
        routes.get("ui/levels") { request, _ in try await page(dashboard, "levels", request) { _ in
            let stats = try await service.stats(maxAge: .seconds(1))
            let ranges = try await service.levelTable().ranges
            let disks = LevelDisk.all(levels: ranges.map(\.name), stats: stats, policies: try await service.placement().policies)
            return (LevelsModel(ranges: ranges, paused: Set(stats.levels.filter(\.paused).map(\.name)), directories: service.directories,
                                disks: disks), Banner.from(stats))
        } }
    }

    /// A page. When Redis or the database cannot be read, the page still renders: the last data it
    /// showed (or none yet) under a banner that says what cannot be read and since when; the
    /// status is then 503, and the page's script keeps refreshing until the data comes back.
    func page(_ dashboard: Dashboard, _ name: String, _ request: Request,
              _ model: (Int64) async throws -> (any Sendable, [Banner])) async throws -> Response {
        let now = service.clock()
        let address = request.uri.description
        do {
            let (read, banners) = try await model(now)
            lastGood.keep(.init(model: read, banners: banners, readAt: now), for: address)
            return Self.html(dashboard.render(page: name, model: read, adminRequired: adminRequired, now: now, banners: banners), .ok)
        } catch {
            guard let known = APIError.from(error), known.status.code >= 500 else { throw error }
            let last = lastGood.reading(for: address)
            let outage = Banner.outage(known.message, readAt: last?.readAt, now: now)
            guard let last else {
                struct Nothing: Sendable { var message: String }
                return Self.html(dashboard.render(page: "error", model: Nothing(message: known.message), adminRequired: adminRequired, now: now,
                                                  banners: [outage]), known.status)
            }
            return Self.html(dashboard.render(page: name, model: last.model, adminRequired: adminRequired, now: now,
                                              banners: [outage] + last.banners, readAt: last.readAt), known.status)
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
