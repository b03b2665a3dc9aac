import Foundation
import RelocatorCore
import Testing
import TestSupport

/// Pause with the built binary: `relocator pause` and `POST /v1/levels/{level}/pause` hold when they
/// return, for worker slots already waiting on the level's queue; moves in flight finish.
@Suite(.serialized) struct PauseTests {
    @Test func aCountPostedTheMomentAPauseReturnsIsNotMovedAndAMoveInFlightFinishes() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        try pipeline.addContents([(1, "moving.bin", "silver", 256 * 1024), (2, "cli.bin", "silver", 4096), (3, "witness-1.bin", "bronze", 4096),
                                  (4, "api.bin", "silver", 4096), (5, "witness-2.bin", "bronze", 4096)])
        let port = try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter()
        // Gold's worker serves only gold, so its idle slots wait on gold's queue (BRPOPLPUSH); each
        // of its moves rests 2 s after the copy, so one is surely in flight when the pause comes.
        try pipeline.cluster.startWorker("gold-worker", levels: "gold", environment: ["RELOCATOR_FAULTS": "pause-after=copied:2000"])
        try pipeline.cluster.startWorker("other-worker", levels: "silver,bronze")

        #expect(try pipeline.post(1, 20_000).status == 200)
        try pipeline.cluster.waitUntil("cid 1 to be moving into gold") { try pipeline.job(1)?["status"] as? String == "moving" }

        // The command returns, and the count comes at once.
        let paused = try pipeline.cluster.run(["pause", "gold"])
        #expect(paused.status == 0, "\(paused.stderr)")
        #expect(try pipeline.post(2, 20_000).status == 200)
        // A count posted after it, for a level that is not paused, is moved and committed…
        #expect(try pipeline.post(3, 5_000).status == 200)
        try pipeline.cluster.waitUntil("cid 3 committed on silver") { try pipeline.level(of: 3) == "silver" }
        // …and the move that was in flight finishes, while cid 2 waits on gold's queue, untouched.
        try pipeline.cluster.waitUntil("cid 1 committed on gold") { try pipeline.level(of: 1) == "gold" }
        #expect(try pipeline.job(2)?["status"] as? String == "queued")
        #expect(pipeline.whereIs("cli.bin") == ["silver"])
        #expect(try pipeline.relocations().allSatisfy { $0.cid != 2 })
        #expect((try pipeline.cluster.queues()["queues"] as? [String: Int])?["gold"] == 1)

        // The same through the API (what the dashboard's button posts).
        let viaAPI = try HTTP.postJSON(port, "/v1/levels/gold/resume", "{}")
        #expect(viaAPI.status == 200, "\(viaAPI.body)")
        try pipeline.cluster.waitUntil("cid 2 committed on gold after the resume") { try pipeline.level(of: 2) == "gold" }
        let pausedAgain = try HTTP.postJSON(port, "/v1/levels/gold/pause", "{}")
        #expect(pausedAgain.status == 200 && pausedAgain.json?["paused"] as? Bool == true, "\(pausedAgain.body)")
        #expect(try pipeline.post(4, 20_000).status == 200)
        #expect(try pipeline.post(5, 5_000).status == 200)
        try pipeline.cluster.waitUntil("cid 5 committed on silver") { try pipeline.level(of: 5) == "silver" }
        try pipeline.cluster.waitUntil("gold's worker to have seen cid 4 and put it back") {
            (try pipeline.cluster.queues()["processing"] as? Int) == 0
        }
        #expect(try pipeline.job(4)?["status"] as? String == "queued")
        #expect(pipeline.whereIs("api.bin") == ["silver"])
        let status = try pipeline.cluster.run(["status", "--json"])
        #expect(status.stdout.contains("\"paused\" : true") || status.stdout.contains("\"paused\":true"), "\(status.stdout)")
    }
}
