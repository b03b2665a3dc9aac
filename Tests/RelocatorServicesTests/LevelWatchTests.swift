import Foundation
import RelocatorCore
import Synchronization
import Testing
@testable import RelocatorServices

/// `LevelWatch`: each level checked on a thread of its own; a check that does not return within
/// the patience makes its level "not answering", and only that level.
struct LevelWatchTests {
    /// A check of `gold` that waits until released, the others answering at once.
    final class Gate: Sendable {
        let holding = Mutex(false)
        let waiting = DispatchSemaphore(value: 0)

        func look(_ level: String) -> LevelWatch.Look {
            if level == "gold", holding.withLock({ $0 }) { waiting.wait() }
            return LevelWatch.Look(unavailable: level == "bronze" ? "unmounted" : nil, usage: nil)
        }
    }

    @Test func aCheckThatDoesNotReturnMakesOnlyItsLevelNotAnswering() throws {
        let gate = Gate()
        let watch = LevelWatch(levels: ["gold", "silver", "bronze"], directories: ["gold": "/levels/gold"], interval: .milliseconds(10),
                               patience: .seconds(2)) { gate.look($0) }
        defer { watch.end(); gate.waiting.signal() }
        watch.start()
        #expect(watch.unavailable() == ["bronze": "unmounted"])

        gate.holding.withLock { $0 = true }
        let deadline = ContinuousClock.now + .seconds(60)
        while watch.unavailable()["gold"] == nil && ContinuousClock.now < deadline { usleep(5_000) }
        let found = watch.unavailable()
        #expect(found["gold"]?.contains("/levels/gold has not answered a check within") == true, "\(found)")
        #expect(found["silver"] == nil && found["bronze"] == "unmounted")
        // Within the patience, a check under way is not yet a level that does not answer.
        #expect(watch.unavailable(at: .now - .seconds(3600))["gold"] == nil)

        gate.holding.withLock { $0 = false }
        gate.waiting.signal()
        while watch.unavailable()["gold"] != nil && ContinuousClock.now < deadline { usleep(5_000) }
        #expect(watch.unavailable() == ["bronze": "unmounted"])
    }

    /// A worker starts while a level's disk hangs: the first checks are waited for at most the
    /// patience, the hung level is not answering from then, the others are in service.
    @Test func aFirstCheckThatDoesNotReturnHoldsUpNeitherTheStartNorTheOtherLevels() throws {
        let gate = Gate()
        gate.holding.withLock { $0 = true }
        let watch = LevelWatch(levels: ["gold", "silver", "bronze"], directories: ["gold": "/levels/gold"], interval: .milliseconds(10),
                               patience: .milliseconds(300)) { gate.look($0) }
        defer { watch.end(); gate.holding.withLock { $0 = false }; gate.waiting.signal() }
        let started = StopSignal()
        BlockingExecutor.thread(named: "test-start") {
            watch.start()
            started.raise()
        }
        try #require(started.wait(for: .seconds(60)), "the watch's start waited for the level that does not answer")
        let found = watch.unavailable()
        #expect(found["gold"]?.contains("/levels/gold has not answered a check within") == true, "\(found)")
        #expect(found["silver"] == nil && found["bronze"] == "unmounted")

        gate.holding.withLock { $0 = false }
        gate.waiting.signal()
        let deadline = ContinuousClock.now + .seconds(60)
        while watch.unavailable()["gold"] != nil && ContinuousClock.now < deadline { usleep(5_000) }
        #expect(watch.unavailable() == ["bronze": "unmounted"])
    }
}
