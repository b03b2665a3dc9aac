import RelocatorCore
import Testing

/// The two hosts of a pull from another host as the job's `pulled_from` field holds them: pure.
@Suite struct PullRouteTests {
    @Test func aRouteIsStoredOneLineEachAndReadBackIntoTheJob() throws {
        let route = PullRoute(sourceWorker: "archive-1", sourceAddress: "[fd00::2]:7070", targetHost: "edge.example")
        #expect(route.stored == "archive-1\n[fd00::2]:7070\nedge.example")
        #expect(PullRoute(stored: route.stored) == route)
        #expect(route.sentence == "worker archive-1 ([fd00::2]:7070) → edge.example")

        var job = Job(cid: 7, count: 1, filename: "a.mp4", dbLevel: "bronze", target: "gold", status: .moving, gen: 2, enqueuedAt: 1, updatedAt: 1)
        job.pulledFrom = route
        let hash = Dictionary(uniqueKeysWithValues: job.fields.compactMap { field, value in value.map { (field.rawValue, $0) } })
        #expect(hash["pulled_from"] == route.stored)
        #expect(Job(hash: hash)?.pulledFrom == route)
        #expect(Job(hash: hash.filter { $0.key != "pulled_from" })?.pulledFrom == nil, "a move on one host names no hosts")
    }

    @Test func aLineBreakInANameStaysInItsLineAndAFieldOfAnotherShapeIsNotShownButTheJobStillReads() throws {
        let odd = PullRoute(sourceWorker: "a\nb", sourceAddress: "h:1", targetHost: "t\r\n")
        #expect(PullRoute(stored: odd.stored) == PullRoute(sourceWorker: "a b", sourceAddress: "h:1", targetHost: "t "))
        #expect(PullRoute(stored: "only\ntwo") == nil && PullRoute(stored: "a\nb\nc\nd") == nil)
        let hash = ["cid": "7", "gen": "2", "status": "moving", "filename": "a.mp4", "db_level": "bronze", "target": "gold",
                    "pulled_from": "not a route"]
        let job = try #require(Job(hash: hash), "a malformed route does not bury the job")
        #expect(job.pulledFrom == nil)
    }
}
