/// Redis Cluster hash slots: a key belongs to slot `CRC16(k) mod 16384`, where `k` is the key's hash
/// tag (the bytes between the first `{` and the first `}` after it, when that is not empty) or else
/// the whole key. Keys with the same tag (`{relocator}job:7`, `{relocator}done`) share a slot, which
/// is what lets a Lua script or a multi-key command touch them together in a cluster.
public enum RedisSlot {
    /// How many slots a cluster has.
    public static let count = 16384

    /// The slot of a key.
    public static func of(key: String) -> Int { of(key: Array(key.utf8)) }

    /// The slot of a binary key.
    public static func of(key: [UInt8]) -> Int {
        Int(CRC16.xmodem(hashTag(of: key)) & UInt16(count - 1))
    }

    /// True when both keys fall in the same slot (a script or command may then use them together).
    public static func same(_ first: String, _ second: String) -> Bool { of(key: first) == of(key: second) }

    /// The one slot all `keys` fall in; nil when they span several slots (or there are none).
    public static func common(_ keys: [String]) -> Int? {
        guard let first = keys.first else { return nil }
        let slot = of(key: first)
        return keys.dropFirst().allSatisfy { of(key: $0) == slot } ? slot : nil
    }

    /// The part of the key that is hashed: the hash tag when there is a non-empty one, else the key.
    public static func hashTag(of key: [UInt8]) -> ArraySlice<UInt8> {
        let open = UInt8(ascii: "{"), close = UInt8(ascii: "}")
        guard let start = key.firstIndex(of: open),
              let end = key[(start + 1)...].firstIndex(of: close),
              end > start + 1
        else { return key[...] }
        return key[(start + 1)..<end]
    }
}

/// CRC-16/XMODEM (polynomial 0x1021, initial value 0, no reflection), the checksum Redis Cluster
/// hashes keys with.
public enum CRC16 {
    private static let table: [UInt16] = (0..<256).map { byte -> UInt16 in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }

    public static func xmodem<Bytes: Sequence>(_ bytes: Bytes) -> UInt16 where Bytes.Element == UInt8 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }
}
