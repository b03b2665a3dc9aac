import Foundation
import RelocatorCore
import Testing

/// Random sequences of operations — counts, takes by two workers, moves, failures (transient and
/// for good), commits, replays, pauses, promotions and counts by level (stale ids too) — run in lockstep on the Redis queue and on
/// the memory queue; every result each step observes must be the same on both. No step waits for
/// time to pass (delays are zero), so neither queue's clock decides anything.
@Suite struct ModelBasedTests {
    /// A small deterministic generator (SplitMix64), so that a failing seed replays.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let levels = ["bronze", "silver", "gold"]

    @Test(arguments: (UInt64(1)...8).map { $0 })
    func randomSequencesObserveTheSameOnBothQueues(seed: UInt64) throws {
        let queues = try QueueUnderTest.Kind.allCases.map { try QueueUnderTest($0) }
        defer { queues.forEach { $0.close() } }
        var random = SeededGenerator(state: seed)
        // Where each content is as far as the commits say (the database of this model).
        var placed: [Int64: String] = [:]
        // Deliveries held, per queue, in the order they were taken.
        var held: [[Delivery]] = [[], []]
        var paused: Set<String> = []
        // What each queue's count by level cached (shard/id → target).
        var known: [[String: String]] = [[:], [:]]
        for step in 0..<150 {
            let choice = Int.random(in: 0..<100, using: &random)
            var observed: [String] = []
            let base = random
            for (index, q) in queues.enumerated() {
                // Both queues draw the same numbers within a step.
                var draw = base
                var seen = ""
                switch choice {
                case 0..<30:
                    let cid = Int64.random(in: 1...5, using: &draw)
                    let target = Self.levels.randomElement(using: &draw)!
                    let from = placed[cid] ?? "bronze"
                    let result = try q.session.submit([SubmitRequest(cid: cid, count: 1, filename: "f\(cid)", dbLevel: from, target: target,
                                                                     readAt: SubmitRequest.freshRead)])[0]
                    seen = "submit \(cid) \(from)→\(target): \(result.outcome.rawValue) \(shape(result.job))"
                case 30..<50:
                    let worker = Bool.random(using: &draw) ? "w1" : "w2"
                    if let delivery = try q.next(worker) {
                        held[index].append(delivery)
                        seen = "next \(worker): \(shape(delivery.job))"
                    } else {
                        seen = "next \(worker): nothing"
                    }
                case 50..<75:
                    guard !held[index].isEmpty else { seen = "complete: none held"; break }
                    let delivery = held[index].removeFirst()
                    let how = Int.random(in: 0..<4, using: &draw)
                    let completion: Completion
                    switch how {
                    case 0, 1: completion = try q.moved(delivery)
                    case 2: completion = try q.failed(delivery, .ioError)
                    default: completion = try q.failed(delivery, .sourceMissing, permanent: true)
                    }
                    seen = "complete \(delivery.job.cid) (\(how)): \(completion.rawValue) \(shape(try q.job(delivery.job.cid)))"
                case 75..<85:
                    let batch = try q.session.nextDone(committer: "c1", shard: 0, max: 100, wait: .zero, fresh: false)
                    let result = try q.session.commit(batch, committer: "c1", levels: Self.levels, policy: .none, keep: .seconds(600))
                    if index == 0 { for job in batch.jobs { placed[job.cid] = job.target } }
                    seen = "commit \(batch.jobs.map(\.cid).sorted()): follow-ups \(result.followUps)"
                case 85..<90:
                    guard case .dead(let outcomes) = try q.session.control(.dead(.replay, cids: nil)) else { seen = "replay: ?"; break }
                    seen = "replay: \(outcomes.map { "\(JobID($0.id)?.cid ?? 0) \($0.outcome.rawValue)" }.sorted())"
                case 90..<95:
                    let level = Self.levels.randomElement(using: &draw)!
                    let pause = !paused.contains(level)
                    _ = try q.session.control(pause ? .pause(level: level) : .resume(level: level))
                    if index == queues.count - 1 { if pause { paused.insert(level) } else { paused.remove(level) } }
                    seen = "\(pause ? "pause" : "resume") \(level)"
                case 95..<97:
                    // The counts by level, with what each queue cached from its last count.
                    let (counts, cache) = try q.session.jobsByLevel(levels: Self.levels, known: known[index])
                    known[index] = cache
                    seen = "by level: \(counts.counts.filter { $0.value > 0 }.map { "\($0.key.state) \($0.key.level) \($0.value)" }.sorted()), cached \(cache.count)"
                default:
                    seen = "promote: \(try q.promote())"
                }
                observed.append(seen)
            }
            _ = random.next()
            #expect(observed[0] == observed[1], "seed \(seed), step \(step): redis «\(observed[0])», memory «\(observed[1])»")
            if observed[0] != observed[1] { return }
        }
        // At the end, every content's job looks the same on both.
        for cid in Int64(1)...5 {
            #expect(shape(try queues[0].job(cid)) == shape(try queues[1].job(cid)), "seed \(seed), cid \(cid)")
        }
    }
}
