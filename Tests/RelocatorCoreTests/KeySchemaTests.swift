import RelocatorCore
import Testing

/// Every key's name has one home: the schema, pure.
@Suite struct KeySchemaTests {
    @Test func oneShardKeepsThePrefixAsItIs() throws {
        let keys = try KeySchema(prefix: "{t}")
        #expect(keys.shard(of: 12345).job(12345) == "{t}job:12345")
        #expect(keys.shards.count == 1 && keys.shard(0).queue("gold") == "{t}queue:gold")
        #expect(keys.control.heartbeat("w1") == "{t}worker:w1")
    }

    @Test func shardsPutTheirIndexInsideTheHashTag() throws {
        let keys = try KeySchema(prefix: "x{t}y", shards: 4)
        #expect(keys.shard(2).job(6) == "x{t:2}yjob:6")
        #expect(Set(keys.shards.map(\.prefix)).count == 4)
        // The control keys stay unsharded, on the plain prefix.
        #expect(keys.control.workers == "x{t}yworkers")
    }

    @Test func aCidAlwaysLivesInTheSameShard() throws {
        let keys = try KeySchema(prefix: "{t}", shards: 8)
        #expect(keys.shardIndex(of: 17) == 1 && keys.shardIndex(of: 17) == KeySchema.shardIndex(of: 17, shards: 8))
        #expect(keys.shard(of: 17).index == 1)
        // A negative cid (never valid, but from outside) still falls in a shard.
        #expect((0..<8).contains(keys.shardIndex(of: -1)))
    }

    @Test func moreThanOneShardNeedsAHashTag() {
        #expect(throws: KeySchema.Invalid.self) { try KeySchema(prefix: "plain", shards: 2) }
        #expect(throws: KeySchema.Invalid.self) { try KeySchema(prefix: "{}", shards: 2) }
        #expect(throws: Never.self) { try KeySchema(prefix: "plain", shards: 1) }
    }

    @Test func theShardCountIsBounded() {
        #expect { try KeySchema(shards: 0) } throws: { "\($0)" == "the shard count must be between 1 and 1024, got 0" }
        #expect(throws: KeySchema.Invalid.self) { try KeySchema(shards: 1025) }
        #expect(throws: Never.self) { try KeySchema(shards: 1024) }
    }

    @Test func theKeysOfAShardAreApart() throws {
        let shard = try KeySchema(prefix: "{t}").shard(0)
        let names = [shard.retry, shard.deferred, shard.dead, shard.done, shard.gens, shard.stats, shard.movedAt, shard.hits,
                     shard.movedPerMinute, shard.committedPerMinute, shard.processing("w"), shard.committing("c"), shard.lease(1),
                     shard.residents("gold"), shard.queue("gold"), shard.job(1)]
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.hasPrefix("{t}") })
    }
}

/// Moves and commits per minute in a ring of 120 slots.
@Suite struct ThroughputRingTests {
    @Test func addingInOneMinuteSumsInItsSlot() {
        var ring: [String: String] = [:]
        ThroughputRing.add(2, bytes: 100, now: 60_000 * 7 + 5, to: &ring)
        ThroughputRing.add(3, bytes: 50, now: 60_000 * 7 + 59_999, to: &ring)
        #expect(ring == ["7": "7 5 150"])
    }

    @Test func aSlotWrittenALapAgoStartsAgain() {
        var ring: [String: String] = [:]
        ThroughputRing.add(9, bytes: 9, now: 60_000 * 7, to: &ring)
        ThroughputRing.add(1, bytes: 2, now: 60_000 * 127, to: &ring)
        #expect(ring == ["7": "127 1 2"])
    }

    @Test func negativeBytesCountAsNoneAndMalformedSlotsAreSkipped() {
        var ring: [String: String] = ["3": "garbage", "4": "5 1 1", "x": "1 1 1", "6": "6 -1 0"]
        #expect(ThroughputRing.decode(ring).isEmpty, "slot and minute disagree, or a value is negative or not a number")
        ThroughputRing.add(1, bytes: -10, now: 60_000 * 3, to: &ring)
        #expect(ring["3"] == "3 1 0")
    }

    @Test func theWindowHasEveryMinuteOldestFirstSummedOverShards() {
        let now: Int64 = 60_000 * 200 + 1
        var a: [String: String] = [:], b: [String: String] = [:]
        ThroughputRing.add(1, bytes: 10, now: now, to: &a)
        ThroughputRing.add(2, bytes: 20, now: now, to: &b)
        ThroughputRing.add(4, bytes: 40, now: now - 120_000, to: &a)
        ThroughputRing.add(8, bytes: 80, now: now - 60_000 * 10, to: &a)
        let window = ThroughputRing.window([a, b], now: now, window: 5)
        #expect(window.map(\.minute) == [196, 197, 198, 199, 200])
        #expect(window.map(\.count) == [0, 0, 4, 0, 3])
        #expect(window.last?.bytes == 30)
    }
}
