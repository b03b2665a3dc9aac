@testable import RedisClient
import RelocatorCore
import Testing

/// Pure rules: no server.
@Suite struct RedisSlotTests {
    @Test func crc16IsTheXmodemVariant() {
        #expect(CRC16.xmodem(Array("123456789".utf8)) == 0x31C3)
        #expect(CRC16.xmodem([UInt8]()) == 0)
    }

    @Test func theSlotOfTheReferenceKeyIs12739() {
        #expect(RedisSlot.of(key: "123456789") == 12739)
    }

    @Test func keysWithTheSameHashTagShareASlot() {
        #expect(RedisSlot.same("{user1000}.following", "{user1000}.followers"))
        #expect(RedisSlot.of(key: "{user1000}.following") == RedisSlot.of(key: "user1000"))
        #expect(RedisSlot.common(["{relocator}job:7", "{relocator}done", "{relocator}queue:gold"]) == RedisSlot.of(key: "relocator"))
        #expect(RedisSlot.common(["{relocator:3}job:7", "{relocator:3}done"]) == RedisSlot.of(key: "relocator:3"))
        #expect(RedisSlot.common(["a", "b"]) == nil)
        #expect(RedisSlot.common([]) == nil)
    }

    @Test func anEmptyOrUnclosedTagHashesTheWholeKey() {
        func whole(_ key: String) -> Int { Int(CRC16.xmodem(Array(key.utf8)) % 16384) }
        #expect(RedisSlot.of(key: "foo{}{bar}") == whole("foo{}{bar}"))
        #expect(RedisSlot.of(key: "{}") == whole("{}"))
        #expect(RedisSlot.of(key: "foo{bar") == whole("foo{bar"))
        #expect(RedisSlot.of(key: "foo}bar{") == whole("foo}bar{"))
    }

    @Test func onlyTheFirstTagCounts() {
        #expect(RedisSlot.of(key: "foo{{bar}}zap") == RedisSlot.of(key: "{bar"))
        #expect(RedisSlot.of(key: "foo{bar}{zap}") == RedisSlot.of(key: "bar"))
        #expect(Array(RedisSlot.hashTag(of: Array("a{b}c".utf8))) == Array("b".utf8))
    }

    @Test func binaryKeysHashTheirBytes() {
        let key: [UInt8] = [0x00, 0xff, 0x7b, 0x61, 0x7d]  // \0 \xff {a}
        #expect(RedisSlot.of(key: key) == RedisSlot.of(key: "a"))
    }

    @Test func commandsAreRoutedByTheirKey() {
        #expect(RedisCommand("GET", "k").routingKey == Array("k".utf8))
        #expect(RedisCommand("BRPOPLPUSH", "{q}a", "{q}b", 1).slot == RedisSlot.of(key: "q"))
        #expect(RedisCommand("EVALSHA", "abc", 2, "first", "second", "arg").routingKey == Array("first".utf8))
        #expect(RedisCommand("EVAL", "return 1", 0).routingKey == nil)
        #expect(RedisCommand("evalsha", "abc", "0", "arg").routingKey == nil)
        #expect(RedisCommand("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", ">").routingKey == Array("s1".utf8))
        #expect(RedisCommand("OBJECT", "ENCODING", "k").routingKey == Array("k".utf8))
        for keyless in ["PING", "INFO", "CONFIG", "SCRIPT", "TIME", "ROLE", "CLUSTER", "COMMAND", "client"] {
            #expect(RedisCommand(keyless, "x").routingKey == nil, "\(keyless)")
        }
        #expect(RedisCommand("PING").routingKey == nil)
    }
}

@Suite struct SHA1Tests {
    @Test func knownVectors() {
        #expect(ScriptName.hex([UInt8]()) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(ScriptName.hex(Array("abc".utf8)) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(ScriptName.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        // Lengths around the padding boundary (55, 56, 64 bytes).
        #expect(ScriptName.hex(Array(repeating: UInt8(ascii: "a"), count: 55)) == "c1c8bbdc22796e28c0e15163d20899b65621d65a")
        #expect(ScriptName.hex(Array(repeating: UInt8(ascii: "a"), count: 56)) == "c2db330f6083854c99d4b5bfb6e8f29f201be699")
        #expect(ScriptName.hex(Array(repeating: UInt8(ascii: "a"), count: 64)) == "0098ba824b5c16427bd7a1122a5a442a25ec644d")
    }

    @Test func aScriptIsNamedByTheSHA1OfItsSource() {
        let script = RedisScript("return 1")
        #expect(script.sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }
}

@Suite struct RedisClusterMapTests {
    let node = RedisURL.Endpoint(host: "10.0.0.9", port: 7000)

    func shard(_ slots: [Int], _ nodes: [(role: String, ip: String, endpoint: String, port: Int)]) -> RedisReply {
        .array([
            .bulk(Array("slots".utf8)), .array(slots.map { .integer(Int64($0)) }),
            .bulk(Array("nodes".utf8)), .array(nodes.map { node in
                .array([
                    .bulk(Array("id".utf8)), .bulk(Array("abc".utf8)),
                    .bulk(Array("port".utf8)), .integer(Int64(node.port)),
                    .bulk(Array("ip".utf8)), .bulk(Array(node.ip.utf8)),
                    .bulk(Array("endpoint".utf8)), .bulk(Array(node.endpoint.utf8)),
                    .bulk(Array("role".utf8)), .bulk(Array(node.role.utf8)),
                    .bulk(Array("health".utf8)), .bulk(Array("online".utf8)),
                ])
            }),
        ])
    }

    @Test func readsCLUSTERSHARDS() throws {
        let reply = RedisReply.array([
            shard([0, 5460, 6000, 6000], [("replica", "127.0.0.1", "127.0.0.1", 7003), ("master", "127.0.0.1", "127.0.0.1", 7000)]),
            shard([5461, 5999, 6001, 16383], [("master", "127.0.0.2", "?", 7001)]),
        ])
        let map = try #require(RedisClusterSlotMap(shards: reply, answeredBy: node))
        #expect(map.owner(of: 0) == .init(host: "127.0.0.1", port: 7000))
        #expect(map.owner(of: 6000) == .init(host: "127.0.0.1", port: 7000))
        #expect(map.owner(of: 5999) == .init(host: "127.0.0.2", port: 7001))
        #expect(map.owner(of: 16383) == .init(host: "127.0.0.2", port: 7001))
        #expect(map.masters.count == 2)
    }

    @Test func readsCLUSTERSLOTSWithAnUnknownAddressAsTheAskedNode() throws {
        let reply = RedisReply.array([
            .array([.integer(0), .integer(8191), .array([.bulk(Array("127.0.0.1".utf8)), .integer(7000), .bulk(Array("id".utf8))])]),
            .array([.integer(8192), .integer(16000), .array([.bulk([]), .integer(7001)]), .array([.bulk(Array("x".utf8)), .integer(7004)])]),
        ])
        let map = try #require(RedisClusterSlotMap(slots: reply, answeredBy: node))
        #expect(map.owner(of: 8191) == .init(host: "127.0.0.1", port: 7000))
        #expect(map.owner(of: 8192) == .init(host: "10.0.0.9", port: 7001))
        #expect(map.owner(of: 16383) == nil)
    }

    @Test func rejectsARepliesOfTheWrongShape() {
        #expect(RedisClusterSlotMap(shards: .integer(1), answeredBy: node) == nil)
        #expect(RedisClusterSlotMap(slots: .array([.array([.integer(1)])]), answeredBy: node) == nil)
    }

    /// A node's or a sentinel's reply comes from another host: a range the wrong way round, a
    /// port no socket has, a range past the slots or more masters than slots are refused or
    /// bounded, never a trap (or a loop over 2^63 slots).
    @Test func aClusterReplyOutOfBoundsIsRefusedOrBounded() throws {
        func range(_ start: Int64, _ end: Int64, port: Int64 = 7000) -> RedisReply {
            .array([.integer(start), .integer(end), .array([.bulk(Array("127.0.0.1".utf8)), .integer(port)])])
        }
        #expect(RedisClusterSlotMap(slots: .array([range(5, 3)]), answeredBy: node) == nil)
        #expect(RedisClusterSlotMap(slots: .array([range(0, 10, port: 4_294_967_296)]), answeredBy: node) == nil)
        #expect(RedisClusterSlotMap(slots: .array([range(0, 10, port: 0)]), answeredBy: node) == nil)
        let wide = try #require(RedisClusterSlotMap(slots: .array([range(-9_223_372_036_854_775_807, 9_223_372_036_854_775_807)]), answeredBy: node))
        #expect(wide.owner(of: 0) == .init(host: "127.0.0.1", port: 7000) && wide.owner(of: 16383) == .init(host: "127.0.0.1", port: 7000))
        #expect(RedisClusterSlotMap(shards: .array([shard([9, 2], [("master", "127.0.0.1", "127.0.0.1", 7000)])]), answeredBy: node) == nil)
        #expect(RedisClusterSlotMap(shards: .array([shard([0, 1], [("master", "127.0.0.1", "127.0.0.1", 65536)])]), answeredBy: node) == nil)
        let many = RedisReply.array((0..<16385).map { range(0, 0, port: Int64(1 + $0)) })
        #expect(RedisClusterSlotMap(slots: many, answeredBy: node) == nil)
        #expect(RedisClusterRedirect(.error("MOVED 1 h:4294967296"), answeredBy: node) == nil)
        #expect(RedisClusterRedirect(.error("MOVED 1 h:0"), answeredBy: node) == nil)
    }

    @Test func readsRedirects() {
        #expect(RedisClusterRedirect(.error("MOVED 3999 127.0.0.1:6381"), answeredBy: node) == .moved(slot: 3999, to: .init(host: "127.0.0.1", port: 6381)))
        #expect(RedisClusterRedirect(.error("ASK 3999 :6382"), answeredBy: node) == .ask(slot: 3999, to: .init(host: "10.0.0.9", port: 6382)))
        #expect(RedisClusterRedirect(.error("MOVED 1 ::1:7000"), answeredBy: node) == .moved(slot: 1, to: .init(host: "::1", port: 7000)))
        #expect(RedisClusterRedirect(.error("TRYAGAIN Multiple keys request during rehashing of slot"), answeredBy: node) == .tryAgain)
        #expect(RedisClusterRedirect(.error("CLUSTERDOWN The cluster is down"), answeredBy: node) == .clusterDown)
        #expect(RedisClusterRedirect(.error("ERR MOVED nothing"), answeredBy: node) == nil)
        #expect(RedisClusterRedirect(.error("MOVED 99999 h:1"), answeredBy: node) == nil)
        #expect(RedisClusterRedirect(.bulk(Array("MOVED 1 h:1".utf8)), answeredBy: node) == nil)
    }
}
